/**
 * The dashboard's sign-in session: a short-lived viewer token from the bridge (`POST /api/token`, docs/security.md),
 * refreshed before it expires, and kept in sessionStorage so that a reload (or a deep link opened in the same tab)
 * stays signed in. The password is sent once, for the first token, and then forgotten.
 *
 * Why sessionStorage and not an HttpOnly cookie: the page must hand the token to the broker as its MQTT password
 * (MQTT over WebSocket authenticates in CONNECT, not with cookies), so script has to read it anyway; and a token that
 * is never sent automatically cannot be used by a forged request from another site. sessionStorage is per tab and
 * gone when the tab closes; a reload keeps it. What it costs: script injected into the page could read it, which the
 * Content-Security-Policy (scripts only from the bridge, no inline script) is there to prevent.
 *
 * Signing in also works with a token (`tali user token alice`, or a shared link `#/camera/cam1?token=…`): it is
 * refreshed once to check it, and kept like any other.
 */
import type { IceServers } from '../protocol/index.ts';
import type { Credential } from '../viewer/viewer-client.ts';

export class SignInError extends Error {}

export interface StoredSession {
  user: string;
  token: string;
  /** ms since the epoch. */
  expiresAt: number;
  devices: readonly string[] | '*';
  /** The user may use the admin pages (GET /api/me at sign-in). */
  admin: boolean;
  /** With TURN on the bridge: the user's TURN credentials that came with the token (protocol §5.10). */
  ice?: IceServers | undefined;
}

interface TokenReply {
  token: string;
  username: string;
  devices: readonly string[] | '*';
  expiresAt: string;
  ice?: IceServers;
}

const STORAGE_KEY = 'tali-session';
/** A stored token with less than this left is refreshed before use rather than handed to the broker. */
const MIN_LEFT_MS = 15_000;

export class DashboardSession {
  #stored: StoredSession;
  /** Only when the bridge issues no tokens (`tali answer` on another broker): the password is the login, kept in memory. */
  readonly #password: string | undefined;
  /** `?ttl=S` asks for S-second tokens (to see refreshes happen). */
  readonly #ttlS: number | undefined;

  private constructor(stored: StoredSession, ttlS: number | undefined, password?: string) {
    this.#stored = stored;
    this.#ttlS = ttlS;
    this.#password = password;
  }

  /** A login without tokens: the password is used for MQTT and the API, and forgotten on reload. */
  static passwordOnly(user: string, password: string): DashboardSession {
    return new DashboardSession({ user, token: '', expiresAt: Number.POSITIVE_INFINITY, devices: '*', admin: false }, undefined, password);
  }

  /** Whether this session logs in with tokens (else with the password). */
  get usesTokens(): boolean {
    return this.#password === undefined;
  }

  get user(): string {
    return this.#stored.user;
  }

  get admin(): boolean {
    return this.#stored.admin;
  }

  /** The current token (for URLs that cannot carry a header: a <video src> of a recording). */
  get token(): string {
    return this.#stored.token;
  }

  get expiresAt(): number {
    return this.#stored.expiresAt;
  }

  /** The devices this login may see: undefined for every device. */
  get devices(): readonly string[] | undefined {
    return this.#stored.devices === '*' ? undefined : this.#stored.devices;
  }

  /** A password login. Undefined when this bridge issues no tokens (`tali answer`: then the password is the login). */
  static async withPassword(user: string, password: string, ttlS?: number): Promise<DashboardSession | undefined> {
    const reply = await requestToken(`Basic ${base64(`${user}:${password}`)}`, ttlS);
    return reply && DashboardSession.#begin(reply, ttlS);
  }

  /** A token login (from `tali user token` or a shared link): refreshed once, which also checks it. */
  static async withToken(token: string, ttlS?: number): Promise<DashboardSession> {
    const reply = await requestToken(`Bearer ${token.trim()}`, ttlS);
    if (reply === undefined) throw new SignInError('this bridge does not take tokens');
    return DashboardSession.#begin(reply, ttlS);
  }

  /** The session this tab kept, if its token has not expired. */
  static restore(ttlS?: number): DashboardSession | undefined {
    try {
      const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null') as StoredSession | null;
      if (stored === null || typeof stored.token !== 'string' || stored.expiresAt <= Date.now() + 1000) return undefined;
      return new DashboardSession(stored, ttlS);
    } catch {
      return undefined;
    }
  }

  static async #begin(reply: TokenReply, ttlS: number | undefined): Promise<DashboardSession> {
    const session = new DashboardSession({ user: reply.username, token: reply.token, expiresAt: Date.parse(reply.expiresAt), devices: reply.devices, admin: false, ice: reply.ice }, ttlS);
    session.#stored.admin = (await session.json<{ role: string }>('api/me')).role === 'admin';
    session.#save();
    return session;
  }

  /**
   * The ViewerClient's credential provider: the kept token while it has time left, a refreshed one after that and at
   * every later CONNECT (a refresh, a reconnect). Each new token is kept for the next reload.
   */
  credentials(): () => Promise<Credential> {
    let first = true;
    return async () => {
      if (this.#password !== undefined) return this.#password;
      if (!(first && this.#stored.expiresAt - Date.now() > MIN_LEFT_MS)) await this.refresh();
      first = false;
      return { secret: this.#stored.token, expiresAt: this.#stored.expiresAt, ice: this.#stored.ice };
    };
  }

  async refresh(): Promise<void> {
    const reply = await requestToken(`Bearer ${this.#stored.token}`, this.#ttlS);
    if (reply === undefined) throw new SignInError('the bridge stopped issuing tokens: sign in again');
    this.#stored = { ...this.#stored, token: reply.token, expiresAt: Date.parse(reply.expiresAt), devices: reply.devices, ice: reply.ice };
    this.#save();
  }

  /** Forgets the kept token (sign out). */
  end(): void {
    sessionStorage.removeItem(STORAGE_KEY);
  }

  /**
   * A call to the bridge's API with this session's token. State-changing calls carry the header the CSRF check asks
   * for (src/http/api-request.ts); a body is sent as JSON.
   */
  api(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Response> {
    const authorization = this.#password === undefined ? `Bearer ${this.#stored.token}` : `Basic ${base64(`${this.#stored.user}:${this.#password}`)}`;
    const headers: Record<string, string> = { ...init.headers, authorization, 'x-tali-request': '1' };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    return fetch(path, { method: init.method ?? 'GET', headers, body: init.body === undefined ? null : JSON.stringify(init.body) });
  }

  /** api() for JSON answers: the parsed body, or an Error with the bridge's message. */
  async json<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
    const res = await this.api(path, init);
    const body = (await res.json().catch(() => ({}))) as T & { message?: string; error?: string };
    if (!res.ok) throw new Error(body.message ? `${body.message} (${body.error})` : `HTTP ${res.status}`);
    return body;
  }

  #save(): void {
    if (this.#password !== undefined) return;
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.#stored));
  }
}

async function requestToken(authorization: string, ttlS: number | undefined): Promise<TokenReply | undefined> {
  const res = await fetch('api/token', {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify(ttlS === undefined ? {} : { ttlS }),
  });
  if (res.status === 404 || res.status === 405) return undefined;
  if (res.status === 401) {
    throw new SignInError(authorization.startsWith('Basic') ? 'Wrong user name or password.' : 'This token is not valid (expired, or its user was removed or re-keyed): sign in again.');
  }
  if (res.status === 429) throw new SignInError('Too many failed sign-ins from this address: wait a few seconds and try again.');
  if (res.status === 403) throw new SignInError('This login is not a viewer or admin of this bridge.');
  if (!res.ok) throw new Error(`the bridge refused a token: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as TokenReply;
}

/** Base64 of the UTF-8 bytes (btoa alone takes Latin-1 only). */
function base64(text: string): string {
  return btoa(Array.from(new TextEncoder().encode(text), (b) => String.fromCharCode(b)).join(''));
}
