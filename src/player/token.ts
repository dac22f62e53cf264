/**
 * The player's credential: a viewer token the page gives it (the `token` attribute, or a `tokenProvider` function),
 * and what a page can read of one without the key. A tali token is `tali1.<base64url(JSON claims)>.<signature>`
 * (src/security/tokens.ts); the player takes the user name from `sub` and plans renewals from `iat` and `exp`. The
 * bridge, which holds the key, is the one that checks it. Browser-safe.
 */
import type { Credential } from '../viewer/viewer-client.ts';

export interface ReadableClaims {
  sub: string;
  /** Issue and expiry times, ms since the epoch. */
  issuedAt: number;
  expiresAt: number;
}

export function readToken(token: string): ReadableClaims | undefined {
  const [prefix, body] = token.split('.');
  if (prefix !== 'tali1' || body === undefined) return undefined;
  try {
    const claims = JSON.parse(atob(body.replace(/-/g, '+').replace(/_/g, '/'))) as { sub?: unknown; iat?: unknown; exp?: unknown };
    if (typeof claims.sub !== 'string' || typeof claims.iat !== 'number' || typeof claims.exp !== 'number') return undefined;
    return { sub: claims.sub, issuedAt: claims.iat * 1000, expiresAt: claims.exp * 1000 };
  } catch {
    return undefined;
  }
}

export class TokenExpiredError extends Error {}

/**
 * Hands ViewerClient a credential at each CONNECT. Halfway through a token's life it asks for the next one: from the
 * provider if the page set one, else by `onExpiring` (the player fires `tali-tokenexpiring`) and the next `token`
 * the page sets. The viewer SDK moves to a new connection at 80 % of the life (at least 3 s before its end): by then the next token is usually
 * there; if not, it waits for it until the current one expires, then fails (and the SDK tries again later).
 */
export class TokenSource {
  provider: (() => Promise<string>) | undefined;
  /** Called when a new token is needed and no provider is set. */
  onExpiring: ((expiresAt: number) => void) | undefined;
  /** A renewal by the provider failed (it is tried again when a connection needs the token). */
  onRenewalFailed: ((err: Error) => void) | undefined;
  /** A new token replaced the one given at the start or the previous renewal. */
  onRenewed: (() => void) | undefined;
  #token = '';
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #waiters = new Set<{ resolve: (token: string) => void; reject: (err: Error) => void }>();
  #closed = false;

  constructor(token: string) {
    this.set(token);
  }

  get token(): string {
    return this.#token;
  }

  /** A new token (the page's attribute, or the provider's): used from the next CONNECT on; ends any wait for one. */
  set(token: string): void {
    if (this.#closed) return;
    const renewed = this.#token !== '' && this.#token !== token;
    this.#token = token;
    for (const waiter of this.#waiters) waiter.resolve(token);
    this.#waiters.clear();
    clearTimeout(this.#renewTimer);
    const claims = readToken(token);
    if (claims !== undefined) this.#renewTimer = setTimeout(() => void this.#renew(), Math.max(0, halfLife(claims) - Date.now()));
    if (renewed) this.onRenewed?.();
  }

  async next(): Promise<Credential> {
    const claims = readToken(this.#token);
    const token = claims !== undefined && Date.now() > halfLife(claims) ? await this.#fresh(claims.expiresAt) : this.#token;
    const fresh = readToken(token);
    return fresh === undefined ? token : { secret: token, expiresAt: fresh.expiresAt };
  }

  /** Stops renewing and rejects every pending wait (the player is gone). Idempotent. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#renewTimer);
    for (const waiter of this.#waiters) waiter.reject(new Error('the player was closed'));
    this.#waiters.clear();
  }

  async #renew(): Promise<void> {
    if (this.#closed) return;
    const claims = readToken(this.#token);
    if (this.provider === undefined) {
      this.onExpiring?.(claims?.expiresAt ?? Date.now());
      return;
    }
    try {
      this.set(await this.provider());
    } catch (err) {
      this.onRenewalFailed?.(err as Error);
    }
  }

  /** The token that replaces one past half its life: already set, or the next one set before `expiresAt`. */
  #fresh(expiresAt: number): Promise<string> {
    if (this.#closed) return Promise.reject(new Error('the player was closed'));
    if (this.provider) return this.provider().then((token) => (this.set(token), token));
    return new Promise<string>((resolve, reject) => {
      const left = expiresAt - Date.now();
      // Until the current token expires it still works; once it has, wait for the page however long it takes.
      const timer =
        left > 0
          ? setTimeout(() => {
              this.#waiters.delete(waiter);
              reject(new TokenExpiredError('the viewer token expired and the page gave no new one'));
            }, left)
          : undefined;
      const waiter = {
        resolve: (token: string) => (clearTimeout(timer), resolve(token)),
        reject: (err: Error) => (clearTimeout(timer), reject(err)),
      };
      this.#waiters.add(waiter);
    });
  }
}

function halfLife(claims: ReadableClaims): number {
  return (claims.issuedAt + claims.expiresAt) / 2;
}
