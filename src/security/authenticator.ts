/**
 * Authentication against the credential store: a stored secret (scrypt), or for viewers a signed token
 * (./tokens.ts). Recent successful secret logins are cached so that a reconnect storm of thousands of cameras does
 * not cost thousands of scrypt runs; the cache key holds a SHA-256 of the secret, never the secret, and the cache is
 * dropped whenever the store file changes (so a removed identity cannot log in again).
 *
 * Client IDs name MQTT sessions, and a new connection with a connected client's ID takes its session over
 * (MQTT-3.1.4-2). So each identity gets its own part of the client ID space: a device exactly its ID, a viewer or
 * admin its name or its name followed by "-" (the viewer SDK adds a random suffix per tab), and never the ID of a
 * registered device. The broker also refuses an ID that another identity holds at that moment.
 */
import { createHash } from 'node:crypto';
import { BucketsByIdentity } from './token-bucket.ts';
import { isValidId } from '../protocol/topics.ts';
import type { CredentialStore } from './credentials.ts';
import { AuthError, type Authenticator, type Identity } from './identity.ts';
import { TOKEN_PREFIX, type TokenSigner } from './tokens.ts';

export interface PasswordAuthOptions {
  store: CredentialStore;
  /** Let clients without a user name in, as the device named by their client ID. Development only. */
  allowAnonymous: boolean;
  /** Verified logins remembered (default 10 000). */
  cacheSize?: number;
  /** The data directory's token key; without it, tokens are refused like wrong passwords. */
  tokens?: (() => Promise<TokenSigner>) | undefined;
  /**
   * Failed logins one address may have at once (default 10) before it is refused without a scrypt run; one more
   * is allowed every `failureRefillS` seconds (default 6). Each scrypt run costs tens of ms of a libuv thread, so
   * guessing would otherwise slow everyone's logins.
   */
  failureBurst?: number;
  failureRefillS?: number;
}

const TOKEN_BYTES = Buffer.from(TOKEN_PREFIX);

export function passwordAuthenticator(options: PasswordAuthOptions): Authenticator {
  const { store, allowAnonymous } = options;
  const cacheSize = options.cacheSize ?? 10_000;
  const cache = new Map<string, Identity>();
  let cachedFor = '';
  const failures = new BucketsByIdentity(1 / (options.failureRefillS ?? 6), options.failureBurst ?? 10);

  async function byToken(username: string, token: string): Promise<Identity> {
    const claims = options.tokens ? (await options.tokens()).verify(token) : undefined;
    if (claims === undefined || claims.sub !== username) throw new AuthError(4, 'invalid or expired token');
    const user = store.lookup(claims.sub);
    if (user === undefined || user.role === 'device' || user.created !== claims.cred) {
      throw new AuthError(4, 'token of a removed or re-keyed user');
    }
    const identity: Identity = { role: 'viewer', id: claims.sub, source: 'token', expiresAt: claims.exp * 1000 };
    return claims.devices === '*' ? identity : { ...identity, devices: claims.devices };
  }

  async function bySecret(username: string, password: Buffer): Promise<Identity> {
    const key = `${username}\u0000${createHash('sha256').update(password).digest('base64')}`;
    let identity = cache.get(key);
    if (identity === undefined) {
      const entry = await store.verify(username, password);
      if (entry === undefined) throw new AuthError(4, 'bad user name or password');
      identity = { role: entry.role, id: entry.id, source: 'secret', credential: entry.created, ...(entry.profile && { profile: entry.profile }) };
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      cache.set(key, identity);
    }
    return identity;
  }

  return async (attempt) => {
    const held = failures.acquire(attempt.address);
    try {
      // Checked before the scrypt run, spent only when the login fails.
      if (!held.bucket.peek()) throw new AuthError(5, `too many failed logins from ${attempt.address}; wait and retry`);
      return await login(attempt);
    } catch (err) {
      if (err instanceof AuthError && err.returnCode === 4) held.bucket.take();
      throw err;
    } finally {
      held.release();
    }
  };

  async function login({ clientId, username, password }: { clientId: string; username: string | undefined; password: Buffer | undefined }): Promise<Identity> {
    if (username === undefined || username === '') {
      if (allowAnonymous && isValidId(clientId)) return { role: 'device', id: clientId, source: 'anonymous' };
      throw new AuthError(5, 'anonymous clients are not allowed');
    }
    if (password === undefined || password.length === 0) throw new AuthError(4, 'missing password');

    await store.refresh();
    if (store.version !== cachedFor) {
      cache.clear();
      cachedFor = store.version;
    }
    const isToken = password.subarray(0, TOKEN_BYTES.length).equals(TOKEN_BYTES);
    const identity = isToken ? await byToken(username, password.toString('utf8')) : await bySecret(username, password);
    checkClientId(identity, clientId, store);
    return identity;
  }
}

function checkClientId(identity: Identity, clientId: string, store: CredentialStore): void {
  if (identity.role === 'device') {
    // MQTT-3.1.3: the client ID names the session; a device may only hold its own, so no one can take it over.
    if (clientId !== identity.id) throw new AuthError(2, `client ID must be the device ID "${identity.id}"`);
    return;
  }
  if (clientId !== identity.id && !clientId.startsWith(`${identity.id}-`)) {
    throw new AuthError(2, `client ID must be "${identity.id}" or start with "${identity.id}-"`);
  }
  if (store.lookup(clientId)?.role === 'device') throw new AuthError(2, `client ID "${clientId}" belongs to a device`);
}
