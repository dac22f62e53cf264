/**
 * Short-lived viewer tokens from the bridge (`POST /api/token`, docs/security.md): the password is sent once, for
 * the first token, and then forgotten; each token buys the next before it expires. The ViewerClient asks for a
 * credential at every CONNECT and moves to a new connection with a fresh token at 80 % of a token's life, so the
 * video never stops for it.
 */
import type { Credential } from '../viewer/viewer-client.ts';

export class SignInError extends Error {}

interface TokenReply {
  token: string;
  expiresAt: string;
}

/**
 * The credential provider for ViewerClient, or undefined when this bridge issues no tokens (then the password is
 * the credential). Throws SignInError for a wrong user name or password.
 */
export async function tokenLogin(user: string, password: string, ttlS?: number): Promise<(() => Promise<Credential>) | undefined> {
  const first = await request(`Basic ${btoa(`${user}:${password}`)}`, ttlS);
  if (first === undefined) return undefined;
  let current = first;
  let handedOut = false;
  return async () => {
    // The first CONNECT uses the token the password bought; every later one (a refresh, a reconnect) a fresh one.
    if (handedOut) {
      const next = await request(`Bearer ${current.token}`, ttlS);
      if (next === undefined) throw new SignInError('the bridge stopped issuing tokens: sign in again');
      current = next;
    }
    handedOut = true;
    return { secret: current.token, expiresAt: Date.parse(current.expiresAt) };
  };
}

async function request(authorization: string, ttlS: number | undefined): Promise<TokenReply | undefined> {
  const res = await fetch('api/token', {
    method: 'POST',
    headers: { authorization, 'content-type': 'application/json' },
    body: JSON.stringify(ttlS === undefined ? {} : { ttlS }),
  });
  if (res.status === 404 || res.status === 405) return undefined;
  if (res.status === 401) throw new SignInError(authorization.startsWith('Basic') ? 'Wrong user name or password.' : 'Your sign-in expired: sign in again.');
  if (!res.ok) throw new Error(`the bridge refused a token: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  return (await res.json()) as TokenReply;
}
