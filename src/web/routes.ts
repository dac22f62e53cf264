/**
 * HTTP routes for the browser apps: `GET /` the dashboard, `GET /camera` the browser camera, `GET /assets/…` their
 * bundled files. Pages are `no-cache` (always revalidated, so a new bridge version is picked up at once); assets have
 * a content hash in their name and are `immutable`. Everything is same-origin with `/mqtt`, which the pages connect
 * to, so a restrictive Content-Security-Policy fits.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { HttpServer, Route } from '../http/server.ts';
import { ASSETS_PATH, webBundle, type WebAppName } from './bundle.ts';

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // connect-src 'self' covers ws:// and wss:// to the same host and port in current browsers (CSP Level 3).
  // worker-src blob: is for mqtt.js's keepalive timer. In a browser mqtt.js runs setInterval in a Worker it creates
  // from a blob: URL (worker-timers, mqtt/build/lib/get-timer.js) because background tabs throttle the page's own
  // timers, Chromium to one wake-up a minute after 5 min hidden: too slow for a 30 s keepalive. Without worker-src
  // the policy falls back to script-src 'self', the Worker is refused, no PINGREQ is ever sent and the broker drops
  // the page at 1.5 × keepalive (45 s; MQTT-3.1.2-24). timerVariant 'native' would avoid the worker but not the
  // throttling. A blob: URL can only be made by script already running in the page (script-src 'self'), and the
  // worker inherits this policy, so this allows nothing an injected script could use.
  'content-security-policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self'; worker-src blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
};

/** What a page needs to find the bridge's MQTT: the WebSocket path and the topic root (per bridge, not per bundle). */
export interface PageSettings {
  mqttPath: string;
  root: string;
}

export function routeWebApps(http: HttpServer, settings: PageSettings, log: Logger): void {
  http.route('/', page('dashboard', settings, log));
  http.route('/index.html', page('dashboard', settings, log));
  http.route('/camera', page('camera', settings, log));
  http.routePrefix(ASSETS_PATH, asset(log));
}

function page(name: WebAppName, settings: PageSettings, log: Logger): Route {
  const attribute = (value: string) => value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  return async (req, res) => {
    if (!allowed(req, res)) return;
    const bundle = await built(res, log);
    if (bundle === undefined) return;
    const html = bundle.pages[name].replace('{{mqttPath}}', attribute(settings.mqttPath)).replace('{{root}}', attribute(settings.root));
    const body = Buffer.from(html);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

function asset(log: Logger): Route {
  return async (req, res) => {
    if (!allowed(req, res)) return;
    const bundle = await built(res, log);
    if (bundle === undefined) return;
    const found = bundle.assets.get((req.url ?? '').split('?')[0] as string);
    if (found === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-cache' }).end('not found\n');
      return;
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? found.gzip : found.body;
    res.writeHead(200, {
      'content-type': found.contentType,
      'content-length': body.length,
      ...(gzip && { 'content-encoding': 'gzip' }),
      vary: 'accept-encoding',
      'cache-control': 'public, max-age=31536000, immutable',
      'x-content-type-options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

function allowed(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return true;
  res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
  return false;
}

async function built(res: ServerResponse, log: Logger) {
  try {
    return await webBundle();
  } catch (err) {
    log.error({ err }, 'bundling the browser apps failed');
    res.writeHead(500, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('the browser apps could not be built; see the bridge log\n');
    return undefined;
  }
}
