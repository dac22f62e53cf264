/**
 * Password authentication against the credential store, with a cache of recent successes so that a reconnect storm
 * of thousands of cameras does not cost thousands of scrypt runs. The cache key holds a SHA-256 of the secret, never
 * the secret, and the cache is dropped whenever the store file changes (so a removed identity cannot log in again).
 */
import { createHash } from 'node:crypto';
import { isValidId } from '../protocol/topics.ts';
import type { CredentialStore } from './credentials.ts';
import { AuthError, type Authenticator, type Identity } from './identity.ts';

export interface PasswordAuthOptions {
  store: CredentialStore;
  /** Let clients without a user name in, as the device named by their client ID. Development only. */
  allowAnonymous: boolean;
  /** Verified logins remembered (default 10 000). */
  cacheSize?: number;
}

export function passwordAuthenticator(options: PasswordAuthOptions): Authenticator {
  const { store, allowAnonymous } = options;
  const cacheSize = options.cacheSize ?? 10_000;
  const cache = new Map<string, Identity>();
  let cachedFor = '';

  return async ({ clientId, username, password }) => {
    if (username === undefined || username === '') {
      if (allowAnonymous && isValidId(clientId)) return { role: 'device', id: clientId };
      throw new AuthError(5, 'anonymous clients are not allowed');
    }
    if (password === undefined || password.length === 0) throw new AuthError(4, 'missing password');

    await store.refresh();
    if (store.version !== cachedFor) {
      cache.clear();
      cachedFor = store.version;
    }
    const key = `${username}\u0000${createHash('sha256').update(password).digest('base64')}`;
    let identity = cache.get(key);
    if (identity === undefined) {
      const entry = await store.verify(username, password);
      if (entry === undefined) throw new AuthError(4, 'bad user name or password');
      identity = { role: entry.role, id: entry.id };
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      cache.set(key, identity);
    }
    // MQTT-3.1.3: the client ID names the session; a device may only hold its own, so no one can take it over.
    if (identity.role === 'device' && clientId !== identity.id) {
      throw new AuthError(2, `client ID must be the device ID "${identity.id}"`);
    }
    return identity;
  };
}
