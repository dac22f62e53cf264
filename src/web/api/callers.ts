/**
 * Who calls the dashboard's API, and the one wrapper every such route goes through (CSRF check, login, role).
 *
 *   Authorization: Bearer <token>   the dashboard's session (a viewer token, ../../security/tokens.ts): a viewer,
 *                                   limited to the token's devices; an admin user's token for every device ("*")
 *                                   is an admin here (how the admin pages work without keeping the password;
 *                                   over MQTT every token still logs in as a viewer)
 *   Authorization: Basic <u:p>      a viewer or admin by password (curl, scripts), throttled like every login
 *
 * Devices are never callers. Refusals are JSON with a stable code and never `WWW-Authenticate: Basic`
 * (../../http/api-request.ts says why).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { forgedRequest, sendError } from '../../http/api-request.ts';
import type { Route } from '../../http/server.ts';
import type { CredentialStore } from '../../security/credentials.ts';
import { httpLogins, REFUSED_LOGIN } from '../../security/http-login.ts';
import type { TokenSigner } from '../../security/tokens.ts';

export interface ApiCaller {
  id: string;
  role: 'viewer' | 'admin';
  /** The token's devices; undefined: every device. */
  devices: readonly string[] | undefined;
  via: 'token' | 'password';
}

export type ApiHandler = (req: IncomingMessage, res: ServerResponse, caller: ApiCaller) => Promise<void> | void;

export interface ApiCallersOptions {
  store: CredentialStore;
  tokens: () => Promise<TokenSigner>;
  logger: Logger;
}

type Refusal = { status: 401 | 403 | 429 | 503; code: string; message: string };

export class ApiCallers {
  readonly #options: ApiCallersOptions;
  /** Password logins by API area ("/api/recordings"), so that each failure is logged with the path it was for. */
  readonly #basic = new Map<string, ReturnType<typeof httpLogins>>();

  constructor(options: ApiCallersOptions) {
    this.#options = options;
  }

  /**
   * A route for callers with at least `role`: forged requests get 403, missing or wrong credentials 401 (without
   * WWW-Authenticate), too many failed logins 429, a viewer on an admin route 403.
   */
  route(role: ApiCaller['role'], handler: ApiHandler, options: { queryToken?: boolean } = {}): Route {
    return async (req, res) => {
      const forged = forgedRequest(req);
      if (forged !== undefined) {
        this.#options.logger.warn({ event: 'forged_request', method: req.method, path: req.url?.split('?')[0], origin: req.headers.origin, address: req.socket.remoteAddress }, forged);
        return sendError(res, 403, 'TALI_ERR_FORBIDDEN', forged);
      }
      const caller = await this.identify(req, options.queryToken === true);
      if ('status' in caller) {
        const retryAfter: Record<string, string> = caller.status === 429 ? { 'retry-after': '6' } : caller.status === 503 ? { 'retry-after': '1' } : {};
        return sendError(res, caller.status, caller.code, caller.message, retryAfter);
      }
      if (role === 'admin' && caller.role !== 'admin') {
        const message = caller.via === 'token' && caller.devices !== undefined ? 'a token limited to some devices is not an admin login' : 'admins only';
        return sendError(res, 403, 'TALI_ERR_FORBIDDEN', message);
      }
      await handler(req, res, caller);
    };
  }

  /**
   * `queryToken`: a GET may carry its token as `?access_token=` (RFC 6750 §2.3), for what a page loads without
   * script: a <video src> that seeks with byte ranges, a download link. Such answers are not to be cached.
   */
  async identify(req: IncomingMessage, queryToken = false): Promise<ApiCaller | Refusal> {
    const header = req.headers.authorization ?? '';
    if (header.startsWith('Bearer ')) return this.#byToken(req, header.slice(7).trim());
    const inQuery = queryToken && (req.method === 'GET' || req.method === 'HEAD') ? new URL(req.url ?? '/', 'http://x').searchParams.get('access_token') : null;
    if (inQuery && header === '') return this.#byToken(req, inQuery);
    if (header.startsWith('Basic ')) {
      const area = (req.url ?? '/').split('?')[0]!.split('/').slice(0, 3).join('/');
      let basic = this.#basic.get(area);
      if (basic === undefined) {
        basic = httpLogins(this.#options.store, this.#options.logger, area);
        if (this.#basic.size < 32) this.#basic.set(area, basic);
      }
      const login = await basic(req);
      if ('refused' in login) {
        if (login.refused === 'failed') return { status: 401, code: 'TALI_ERR_UNAUTHORIZED', message: 'bad user name or password' };
        const { status, error, message } = REFUSED_LOGIN[login.refused];
        return { status, code: error, message };
      }
      const { identity } = login;
      if (identity.role === 'device') return { status: 403, code: 'TALI_ERR_FORBIDDEN', message: 'devices have no use of this API' };
      return { id: identity.id, role: identity.role, devices: undefined, via: 'password' };
    }
    return { status: 401, code: 'TALI_ERR_UNAUTHORIZED', message: 'sign in: Authorization: Bearer <token> or Basic <user:password>' };
  }

  /**
   * A Bearer token and nothing else (WHEP's authentication, draft-ietf-wish-whep §4.8.1): the caller, when the token
   * stops being valid (ms since the epoch) and the credential stamp it carries, or the refusal.
   */
  async bearer(req: IncomingMessage): Promise<(ApiCaller & { expiresAt: number; credential: string }) | Refusal> {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith('Bearer ')) return { status: 401, code: 'TALI_ERR_UNAUTHORIZED', message: 'send Authorization: Bearer <viewer token>' };
    return this.#verify(req, header.slice(7).trim());
  }

  async #byToken(req: IncomingMessage, token: string): Promise<ApiCaller | Refusal> {
    const verified = await this.#verify(req, token);
    if ('status' in verified) return verified;
    const { expiresAt: _e, credential: _c, ...caller } = verified;
    return caller;
  }

  async #verify(req: IncomingMessage, token: string): Promise<(ApiCaller & { expiresAt: number; credential: string }) | Refusal> {
    const { store, tokens, logger } = this.#options;
    const claims = (await tokens()).verify(token);
    await store.refresh();
    const user = claims && store.lookup(claims.sub);
    if (claims === undefined || user === undefined || user.role === 'device' || user.created !== claims.cred) {
      logger.warn({ event: 'auth_failed', transport: 'http', path: req.url?.split('?')[0], username: claims?.sub, address: req.socket.remoteAddress, status: 401 }, 'invalid or expired token');
      return { status: 401, code: 'TALI_ERR_UNAUTHORIZED', message: 'invalid or expired token: sign in again' };
    }
    const devices = claims.devices === '*' ? undefined : claims.devices;
    const role = user.role === 'admin' && devices === undefined ? 'admin' : 'viewer';
    return { id: claims.sub, role, devices, via: 'token', expiresAt: claims.exp * 1000, credential: claims.cred };
  }
}

/** What a watch of this device needs: the caller's devices include it (admins and password logins see every device). */
export function mayWatch(caller: ApiCaller, deviceId: string): boolean {
  return caller.devices === undefined || caller.devices.includes(deviceId);
}
