/**
 * POST /api/token: a viewer token for the dashboard, so that it keeps a short-lived token instead of the password.
 *
 *   Authorization: Basic <user:password>   a viewer or admin; issues a token for itself, or (admin) for `sub`
 *   Authorization: Bearer <token>          refresh: same user and devices (or fewer), new expiry; the chain ends
 *                                          tokenMaxTtlS after the password was given
 *   body (optional JSON): { "devices": ["cam1"] | "*", "ttlS": 900, "sub": "alice" }
 *
 * 200 { token, username, devices, expiresAt[, ice] }; `ice` (with TURN configured): the `ice-servers` message of the user,
 * TURN credentials for its peers (docs/protocol.md §16.4). Failures are logged once each with the user name and address.
 * Over plain HTTP the password crosses the network in clear: configure TLS (docs/security.md).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Route } from '../http/server.ts';
import type { IceServers } from '../protocol/messages.ts';
import { isValidId } from '../protocol/topics.ts';
import type { CredentialStore, StoredIdentity } from './credentials.ts';
import { readBasic, REFUSED_LOGIN, verifyThrottled } from './http-login.ts';
import type { LoginRefusal } from './login-throttle.ts';
import type { TokenClaims, TokenSigner } from './tokens.ts';

export const TOKEN_PATH = '/api/token';
const DEFAULT_TTL_S = 900;
const MAX_BODY_BYTES = 16 * 1024;

export interface TokenRouteOptions {
  store: CredentialStore;
  tokens: () => Promise<TokenSigner>;
  maxTtlS: number;
  /** The user's own ICE servers (TURN credentials), handed out with each token; undefined: none. */
  ice?: ((user: string) => IceServers | undefined) | undefined;
  logger: Logger;
}

export function tokenRoute(options: TokenRouteOptions): Route {
  const { store, maxTtlS, logger } = options;
  return async (req, res) => {
    if (req.method !== 'POST') return fail(res, 405, 'TALI_ERR_METHOD', 'use POST', { allow: 'POST' });
    await issue(req, res, req.socket.remoteAddress ?? 'unknown');
  };

  async function issue(req: IncomingMessage, res: ServerResponse, address: string): Promise<void> {
    const refused = (status: number, code: string, message: string, user?: string) => {
      logger.warn({ event: 'auth_failed', transport: 'http', path: TOKEN_PATH, username: user, address, status }, message);
      // No `WWW-Authenticate: Basic` on the 401: browsers would show their own login dialog over the dashboard's and
      // then send the cached password with every request to this origin, forged ones too (issue 11, finding 14).
      fail(res, status, code, message);
    };
    let body: { devices?: unknown; ttlS?: unknown; sub?: unknown };
    try {
      body = await readJson(req);
    } catch (err) {
      return fail(res, 400, 'TALI_ERR_BAD_REQUEST', (err as Error).message);
    }
    const signer = await options.tokens();
    const now = Math.floor(Date.now() / 1000);
    const header = req.headers.authorization ?? '';

    // Who asks, and within what: a password login may ask for anything its role allows; a token only for itself
    // and at most its own devices, before its chain's end. Both go through the login throttle (./http-login.ts).
    let caller: StoredIdentity | undefined;
    let previous: TokenClaims | undefined;
    if (header.startsWith('Bearer ')) {
      await store.refresh();
      const attempt = store.logins.begin(address);
      if (attempt === 'throttled') return refusedLogin('throttled');
      try {
        previous = signer.verify(header.slice(7).trim(), now);
        caller = previous && store.lookup(previous.sub);
        if (!previous || !caller || caller.role === 'device' || caller.created !== previous.cred) {
          return refused(401, 'TALI_ERR_UNAUTHORIZED', 'invalid or expired token', previous?.sub);
        }
        attempt.succeeded();
      } finally {
        attempt.end();
      }
    } else if (header.startsWith('Basic ')) {
      const basic = readBasic(req);
      if (basic === undefined) return refused(401, 'TALI_ERR_UNAUTHORIZED', 'HTTP Basic credentials required');
      const checked = await verifyThrottled(store, address, basic.user, basic.secret);
      if (typeof checked === 'string') return refusedLogin(checked, basic.user);
      caller = checked;
      if (caller === undefined) return refused(401, 'TALI_ERR_UNAUTHORIZED', 'bad user name or password', basic.user);
    } else {
      return refused(401, 'TALI_ERR_UNAUTHORIZED', 'HTTP Basic credentials or a Bearer token required');
    }

    function refusedLogin(why: LoginRefusal, user?: string): void {
      const { status, error, message, retryAfterS } = REFUSED_LOGIN[why];
      logger.warn({ event: 'auth_failed', transport: 'http', path: TOKEN_PATH, username: user, address, status }, message);
      fail(res, status, error, message, { 'retry-after': String(retryAfterS) });
    }
    if (caller.role === 'device') return refused(403, 'TALI_ERR_FORBIDDEN', 'devices do not get viewer tokens', caller.id);

    const sub = body.sub === undefined ? caller.id : body.sub;
    if (typeof sub !== 'string' || !isValidId(sub)) return fail(res, 400, 'TALI_ERR_BAD_REQUEST', '"sub" must be a user name');
    if (sub !== caller.id && (previous !== undefined || caller.role !== 'admin')) {
      return refused(403, 'TALI_ERR_FORBIDDEN', 'only an admin signing in with its password may issue tokens for others', caller.id);
    }
    const subject = sub === caller.id ? caller : store.lookup(sub);
    if (subject === undefined || subject.role === 'device') return fail(res, 404, 'TALI_ERR_NOT_FOUND', `no viewer or admin named ${sub}`);

    const devices = parseDevicesField(body.devices ?? previous?.devices ?? '*');
    if (devices === undefined) return fail(res, 400, 'TALI_ERR_BAD_REQUEST', '"devices" must be "*" or a list of device IDs');
    if (previous && !within(devices, previous.devices)) {
      return refused(403, 'TALI_ERR_FORBIDDEN', 'a refreshed token cannot see more devices than the one it replaces', caller.id);
    }
    const ttl = body.ttlS === undefined ? DEFAULT_TTL_S : body.ttlS;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1) return fail(res, 400, 'TALI_ERR_BAD_REQUEST', '"ttlS" must be a positive integer');
    const auth = previous?.auth ?? now;
    const exp = Math.min(now + ttl, now + maxTtlS, auth + maxTtlS);
    if (exp <= now) return refused(401, 'TALI_ERR_UNAUTHORIZED', 'this token chain has reached tokenMaxTtlS: sign in again', caller.id);
    const token = signer.sign({ sub, devices, iat: now, exp, auth, cred: subject.created });
    logger.info({ event: 'token_issued', sub, by: caller.id, devices, exp, refresh: previous !== undefined, address }, 'viewer token issued');
    const ice = options.ice?.(sub);
    send(res, 200, { token, username: sub, devices, expiresAt: new Date(exp * 1000).toISOString(), ...(ice && { ice }) });
  }
}

function parseDevicesField(value: unknown): readonly string[] | '*' | undefined {
  if (value === '*') return '*';
  return Array.isArray(value) && value.length > 0 && value.length <= 1000 && value.every(isValidId) ? (value as string[]) : undefined;
}

function within(devices: readonly string[] | '*', allowed: readonly string[] | '*'): boolean {
  if (allowed === '*') return true;
  return devices !== '*' && devices.every((d) => allowed.includes(d));
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Error(`body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  const value = JSON.parse(text) as unknown;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('body must be a JSON object');
  return value as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
}

function fail(res: ServerResponse, status: number, error: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }).end(`${JSON.stringify({ error, message })}\n`);
}
