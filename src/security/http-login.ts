/**
 * HTTP Basic logins against the credential store (the admin API, POST /api/token), through the same login throttle
 * as MQTT logins (./login-throttle.ts): a failure token taken first and given back on success, a slot for each scrypt
 * run. Each failure is logged once with the user name and address, never the secret.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { isValidId } from '../protocol/topics.ts';
import type { CredentialStore, StoredIdentity } from './credentials.ts';
import type { LoginRefusal } from './login-throttle.ts';

/** The user name and secret of an `Authorization: Basic` header, if it holds a well-formed pair. */
export function readBasic(req: IncomingMessage): { user: string; secret: Buffer } | undefined {
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = decoded.slice(0, Math.max(colon, 0));
  if (colon < 1 || !isValidId(user)) return undefined;
  return { user, secret: Buffer.from(decoded.slice(colon + 1), 'utf8') };
}

/**
 * Checks `secret` for `user`, throttled per `address`: the stored identity, undefined for wrong credentials, or why
 * it was not checked ('throttled': too many failures from the address; 'busy': no slot for a scrypt run now).
 */
export async function verifyThrottled(store: CredentialStore, address: string, user: string, secret: Buffer): Promise<StoredIdentity | LoginRefusal | undefined> {
  await store.refresh();
  const attempt = store.logins.begin(address);
  if (attempt === 'throttled') return 'throttled';
  try {
    if (store.isSlowCheck(user) && !(await attempt.slot())) return 'busy';
    const identity = await store.verify(user, secret).catch(() => undefined);
    if (identity !== undefined) attempt.succeeded();
    return identity;
  } finally {
    attempt.end();
  }
}

/** HTTP status and answer for a refused login, the same on every route. */
export const REFUSED_LOGIN = {
  throttled: { status: 429, error: 'TALI_ERR_RATE_LIMITED', message: 'too many failed logins from this address; wait and retry', retryAfterS: 6 },
  busy: { status: 503, error: 'TALI_ERR_UNAVAILABLE', message: 'busy checking other logins; retry', retryAfterS: 1 },
} as const satisfies Record<LoginRefusal, unknown>;

export type HttpLogin = { identity: StoredIdentity } | { refused: LoginRefusal | 'failed' };

export function httpLogins(store: CredentialStore, logger: Logger, path: string): (req: IncomingMessage) => Promise<HttpLogin> {
  return async (req) => {
    const address = req.socket.remoteAddress ?? 'unknown';
    const basic = readBasic(req);
    const result = basic === undefined ? undefined : await verifyThrottled(store, address, basic.user, basic.secret);
    if (typeof result === 'object') return { identity: result };
    const status = result === undefined ? 401 : REFUSED_LOGIN[result].status;
    logger.warn({ event: 'auth_failed', transport: 'http', path, username: basic?.user, address, status }, result === undefined ? 'bad user name or password' : REFUSED_LOGIN[result].message);
    return { refused: result ?? 'failed' };
  };
}
