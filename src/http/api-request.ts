/**
 * What every JSON API route the dashboard calls has in common: who is asking, whether a state-changing request really
 * came from a page of this bridge, and how answers and errors look.
 *
 * Who: `Authorization: Bearer <viewer token>` (what the dashboard keeps for its session, ../security/tokens.ts) or
 * `Basic <user:password>` (curl, scripts). A 401 never carries `WWW-Authenticate: Basic`: that header makes browsers
 * show their own login dialog and then cache the password and send it with every later request to the origin,
 * including forged ones from other sites (finding 14 of issue 11).
 *
 * Cross-site request forgery: a state-changing request (anything but GET, HEAD, OPTIONS) must carry
 * `Content-Type: application/json` or an `X-Tali-Request` header, neither of which a cross-site form or a "simple"
 * cross-origin fetch can send without a CORS preflight, which no route here answers; and when the browser says where
 * the request comes from (`Origin`, `Sec-Fetch-Site`), it must be this bridge's own origin. Clients that are not
 * browsers (curl) send neither and pass on the content type alone.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';

export const CSRF_HEADER = 'x-tali-request';

/** Why a state-changing request looks forged, or undefined when it does not. */
export function forgedRequest(req: IncomingMessage): string | undefined {
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return undefined;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a ${site} request may not change anything here`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== ownOrigin(req)) return `requests from ${origin.slice(0, 200)} may not change anything here`;
  const json = /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '');
  if (!json && req.headers[CSRF_HEADER] === undefined) return `send Content-Type: application/json or an ${CSRF_HEADER} header`;
  return undefined;
}

/** This server's origin as the browser names it: the scheme of the socket and the Host the browser used. */
export function ownOrigin(req: IncomingMessage): string {
  const tls = (req.socket as TLSSocket).encrypted === true;
  return `${tls ? 'https' : 'http'}://${req.headers.host ?? ''}`;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

/** `{"error": CODE, "message": …}` with a stable code (src/errors.ts, src/protocol/errors.ts). */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: code, message }, headers);
}

/** Reads a JSON object body of at most `maxBytes`; an empty body is `{}`. Throws with a message for the client. */
export async function readJsonBody(req: IncomingMessage, maxBytes = 16 * 1024): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new Error(`body over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('body must be a JSON object');
  return value as Record<string, unknown>;
}

/** The path after `prefix`, percent-decoded; undefined when an escape is malformed. */
export function pathAfter(req: IncomingMessage, prefix: string): string | undefined {
  try {
    return decodeURIComponent((req.url ?? '').split('?')[0]!.slice(prefix.length));
  } catch {
    return undefined;
  }
}
