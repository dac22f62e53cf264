/** `GET /metrics`: the bridge's registry in the Prometheus text format. */
import type { Route } from '../http/server.ts';
import type { BridgeMetrics } from './bridge-metrics.ts';

/** `before`: brings counters kept elsewhere up to date first (media workers report their packets once a second). */
export function metricsRoute(metrics: BridgeMetrics, before: () => Promise<void> = async () => {}): Route {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    await before();
    const text = await metrics.render();
    res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text);
  };
}
