/**
 * Authentication against the credential store: a stored secret (scrypt), or for viewers a signed token
 * (./tokens.ts). Recent successful secret logins are cached so that a reconnect storm of thousands of cameras does
 * not cost thousands of scrypt runs; the cache key holds a SHA-256 of the secret, never the secret, and the cache is
 * dropped whenever the store file changes (so a removed identity cannot log in again).
 *
 * Client IDs name MQTT sessions, and a new connection with a connected client's ID takes its session over
 * (MQTT-3.1.4-2). So each identity gets its own part of the client ID space (src/protocol/client-ids.ts): a device
 * exactly its ID, a viewer or admin its name or its name followed by ":" and a suffix (the viewer SDK adds a random
 * one per tab), and never the ID of a registered device. The broker also refuses an ID that another identity holds
 * at that moment.
 */
import { createHash } from 'node:crypto';
import { CLIENT_ID_SEPARATOR, clientIdOwner } from '../protocol/client-ids.ts';
import { isValidId } from '../protocol/topics.ts';
import type { CredentialStore } from './credentials.ts';
import { AuthError, type Authenticator, type Identity } from './identity.ts';
import type { LoginAttempt } from './login-throttle.ts';
import { TOKEN_PREFIX, type TokenSigner } from './tokens.ts';

export interface PasswordAuthOptions {
  store: CredentialStore;
  /** Let clients without a user name in, as the device named by their client ID. Development only. */
  allowAnonymous: boolean;
  /** Verified logins remembered (default 10 000). */
  cacheSize?: number;
  /** The data directory's token key; without it, tokens are refused like wrong passwords. */
  tokens?: (() => Promise<TokenSigner>) | undefined;
}

const TOKEN_BYTES = Buffer.from(TOKEN_PREFIX);

export function passwordAuthenticator(options: PasswordAuthOptions): Authenticator {
  const { store, allowAnonymous } = options;
  const cacheSize = options.cacheSize ?? 10_000;
  const cache = new Map<string, Identity>();
  let cachedFor = '';

  async function byToken(username: string, token: string): Promise<Identity> {
    const claims = options.tokens ? (await options.tokens()).verify(token) : undefined;
    if (claims === undefined || claims.sub !== username) throw new AuthError(4, 'invalid or expired token');
    const user = store.lookup(claims.sub);
    if (user === undefined || user.role === 'device' || user.created !== claims.cred) {
      throw new AuthError(4, 'token of a removed or re-keyed user');
    }
    const identity: Identity = { role: 'viewer', id: claims.sub, source: 'token', credential: claims.cred, expiresAt: claims.exp * 1000 };
    return claims.devices === '*' ? identity : { ...identity, devices: claims.devices };
  }

  async function bySecret(username: string, password: Buffer, attempt: LoginAttempt): Promise<Identity> {
    if (store.isSlowCheck(username) && !(await attempt.slot())) throw new AuthError(3, 'busy checking other logins; retry');
    const entry = await store.verify(username, password);
    if (entry === undefined) throw new AuthError(4, 'bad user name or password');
    return { role: entry.role, id: entry.id, source: 'secret', credential: entry.created, ...(entry.profile && { profile: entry.profile }) };
  }

  /** The credential check: a remembered success at once, anything else through the store's login throttle. */
  async function check(username: string, password: Buffer, address: string): Promise<Identity> {
    const isToken = password.subarray(0, TOKEN_BYTES.length).equals(TOKEN_BYTES);
    const key = isToken ? undefined : `${username}\u0000${createHash('sha256').update(password).digest('base64')}`;
    const cached = key === undefined ? undefined : cache.get(key);
    if (cached !== undefined) return cached;
    // Taken before the check and given back when it succeeds: concurrent guesses cannot all pass a look-ahead.
    const attempt = store.logins.begin(address);
    if (attempt === 'throttled') throw new AuthError(5, `too many failed logins from ${address}; wait and retry`);
    try {
      const identity = isToken ? await byToken(username, password.toString('utf8')) : await bySecret(username, password, attempt);
      attempt.succeeded();
      if (key !== undefined) {
        if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
        cache.set(key, identity);
      }
      return identity;
    } catch (err) {
      if (!(err instanceof AuthError && err.returnCode === 4)) attempt.notCharged();
      throw err;
    } finally {
      attempt.end();
    }
  }

  return async ({ clientId, username, password, address }) => {
    if (username === undefined || username === '') {
      if (allowAnonymous && isValidId(clientId)) return { role: 'device', id: clientId, source: 'anonymous' };
      throw new AuthError(5, 'anonymous clients are not allowed');
    }
    await store.refresh();
    if (store.version !== cachedFor) {
      cache.clear();
      cachedFor = store.version;
    }
    if (password === undefined || password.length === 0) {
      const attempt = store.logins.begin(address); // a failure like a wrong password
      if (attempt !== 'throttled') attempt.end();
      throw new AuthError(4, 'missing password');
    }
    const identity = await check(username, password, address);
    checkClientId(identity, clientId, store);
    // A viewer's topics are per connection: the identity carries the client ID its rules expand (./access.ts).
    return identity.role === 'device' ? identity : { ...identity, clientId };
  };
}

function checkClientId(identity: Identity, clientId: string, store: CredentialStore): void {
  if (identity.role === 'device') {
    // MQTT-3.1.3: the client ID names the session; a device may only hold its own, so no one can take it over.
    if (clientId !== identity.id) throw new AuthError(2, `client ID must be the device ID "${identity.id}"`);
    return;
  }
  // A client ID tali accepts is also one safe topic level: a viewer's topics are per connection (../protocol/topics.ts).
  if (clientIdOwner(clientId) !== identity.id) {
    throw new AuthError(2, `client ID must be "${identity.id}" or start with "${identity.id}${CLIENT_ID_SEPARATOR}"`);
  }
  if (store.lookup(clientId)?.role === 'device') throw new AuthError(2, `client ID "${clientId}" belongs to a device`);
}
