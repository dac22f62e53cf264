/**
 * HTTP Basic logins against the credential store (the admin API), throttled per address like MQTT logins and
 * /api/token: 10 failures at once, one more every 6 s, then refused without a scrypt run. Each failure is logged
 * once with the user name and address, never the secret.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { isValidId } from '../protocol/topics.ts';
import type { CredentialStore, StoredIdentity } from './credentials.ts';
import { BucketsByIdentity } from './token-bucket.ts';

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

export type HttpLogin = { identity: StoredIdentity } | { refused: 'throttled' | 'failed' };

export function httpLogins(store: CredentialStore, logger: Logger, path: string): (req: IncomingMessage) => Promise<HttpLogin> {
  const failures = new BucketsByIdentity(1 / 6, 10);
  return async (req) => {
    const address = req.socket.remoteAddress ?? 'unknown';
    const held = failures.acquire(address);
    try {
      if (!held.bucket.peek()) {
        logger.warn({ event: 'auth_failed', transport: 'http', path, address, status: 429 }, 'too many failed logins from this address');
        return { refused: 'throttled' };
      }
      const basic = readBasic(req);
      const identity = basic && (await store.verify(basic.user, basic.secret).catch(() => undefined));
      if (identity === undefined) {
        held.bucket.take();
        logger.warn({ event: 'auth_failed', transport: 'http', path, username: basic?.user, address, status: 401 }, 'bad user name or password');
        return { refused: 'failed' };
      }
      return { identity };
    } finally {
      held.release();
    }
  };
}
