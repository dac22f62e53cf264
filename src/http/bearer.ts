/**
 * An optional shared token in front of operational routes (/metrics, /readyz): what Prometheus (`authorization`
 * with `credentials`) and orchestrator probes (`httpHeaders`) can send. Empty token: the route is public, a
 * documented choice (docs/security.md). Compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Route } from './server.ts';

export function requireBearer(token: string, route: Route): Route {
  if (token === '') return route;
  const expected = digest(token);
  return (req, res) => {
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (given !== '' && timingSafeEqual(digest(given), expected)) return route(req, res);
    res.writeHead(401, { 'content-type': 'application/json', 'cache-control': 'no-store', 'www-authenticate': 'Bearer realm="tali"' });
    res.end(`${JSON.stringify({ error: 'TALI_ERR_UNAUTHORIZED', message: 'this route needs Authorization: Bearer <metricsToken>' })}\n`);
  };
}

/** Hashed first, so that tokens of any length compare in constant time. */
function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
