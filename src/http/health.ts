/**
 * `/healthz` (the process is alive and serving HTTP) and `/readyz` (it can do its job now: every check passes).
 * Orchestrators restart on a failing /healthz and stop sending traffic on a failing /readyz, so /readyz says why.
 */
import type { Route } from './server.ts';

/** Named checks; each returns undefined when fine, or why not. */
export type ReadinessChecks = Record<string, () => string | undefined>;

export const healthz: Route = (_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ok\n');
};

/** 200 {"ready":true} or 503 {"ready":false,"reason":"…","checks":{…}} with the first failing check as the reason. */
export function readyz(checks: ReadinessChecks): Route {
  return (_req, res) => {
    const results = Object.fromEntries(Object.entries(checks).map(([name, check]) => [name, check() ?? 'ok']));
    const failed = Object.entries(results).find(([, result]) => result !== 'ok');
    const body = failed ? { ready: false, reason: `${failed[0]}: ${failed[1]}`, checks: results } : { ready: true, checks: results };
    res.writeHead(failed ? 503 : 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
  };
}
