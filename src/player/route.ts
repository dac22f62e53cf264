/**
 * `GET /tali-player.js`: the `<tali-player>` element as one classic script (IIFE, mqtt.js included), for pages on
 * any origin. Bundled from src/player/tali-player.ts with esbuild on first request, like the dashboard (no build step,
 * nothing to go stale). The path is stable, so the response is revalidated (`no-cache` + ETag) rather than cached
 * for good, and it is public: `Access-Control-Allow-Origin: *` (a page may load it with `crossorigin` or as a module)
 * and `Cross-Origin-Resource-Policy: cross-origin` (pages that isolate themselves with COEP may embed it). It carries
 * no credentials and reads none.
 *
 * `GET /tali-player/origin`: whether the calling page's origin may open MQTT over WebSocket at /mqtt (the bridge's
 * allowedOrigins, src/http/origin.ts), as `{ origin, allowed }`. A browser hides why a WebSocket handshake failed
 * (a 403 and an unreachable host look alike to the page), so the player asks here when its WebSocket never opened,
 * and says "this origin is not allowed" instead of reconnecting for ever. It tells a page only about its own origin.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { HttpServer, Route } from '../http/server.ts';

import { PLAYER_ORIGIN_PATH, PLAYER_PATH } from './paths.ts';

export { PLAYER_ORIGIN_PATH, PLAYER_PATH };

/** `ts` running from the sources, `js` in the built package (see src/web/bundle.ts). */
const ENTRY = fileURLToPath(new URL(`./tali-player.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, HEAD',
  'cross-origin-resource-policy': 'cross-origin',
};

interface PlayerScript {
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

let shared: Promise<PlayerScript> | undefined;

/** Built once per process (callers share the build); a failed build is tried again on the next request. */
export function playerScript(): Promise<PlayerScript> {
  shared ??= buildPlayer().catch((err: unknown) => {
    shared = undefined;
    throw err;
  });
  return shared;
}

async function buildPlayer(): Promise<PlayerScript> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome111', 'firefox115', 'safari16.4'],
    minify: true,
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
  });
  const body = Buffer.from(result.outputFiles[0]!.contents);
  return { body, gzip: gzipSync(body), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** `allowOrigin`: the check /mqtt applies to a WebSocket handshake (src/http/origin.ts originCheck). */
export function routePlayer(http: HttpServer, log: Logger, allowOrigin: (req: IncomingMessage) => boolean): void {
  http.route(PLAYER_PATH, playerRoute(log));
  http.route(PLAYER_ORIGIN_PATH, originRoute(allowOrigin));
}

function originRoute(allowOrigin: (req: IncomingMessage) => boolean): Route {
  return (req, res) => {
    if (req.method === 'OPTIONS') return void res.writeHead(204, { ...CORS, 'access-control-max-age': '86400' }).end();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return void res.writeHead(405, { allow: 'GET, HEAD, OPTIONS', 'content-type': 'text/plain' }).end('method not allowed\n');
    }
    const body = JSON.stringify({ origin: req.headers.origin ?? null, allowed: allowOrigin(req) });
    res.writeHead(200, { ...CORS, 'content-type': 'application/json', 'cache-control': 'no-store', vary: 'origin' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

function playerRoute(log: Logger): Route {
  return async (req, res) => {
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { ...CORS, 'access-control-max-age': '86400' }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD, OPTIONS', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    let script: PlayerScript;
    try {
      script = await playerScript();
    } catch (err) {
      log.error({ err }, 'bundling the player failed');
      res.writeHead(500, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('the player could not be built; see the bridge log\n');
      return;
    }
    const headers = { ...CORS, etag: script.etag, 'cache-control': 'no-cache', vary: 'accept-encoding', 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === script.etag) {
      res.writeHead(304, headers).end();
      return;
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    const body = gzip ? script.gzip : script.body;
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/javascript; charset=utf-8',
      'content-length': body.length,
      ...(gzip && { 'content-encoding': 'gzip' }),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
