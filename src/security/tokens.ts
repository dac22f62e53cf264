/**
 * Short-lived viewer tokens: what the dashboard presents as its MQTT password instead of the user's own.
 *
 *   tali1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "tali1." + claims))>
 *
 * Claims: `sub` the viewer's user name, `devices` the device IDs it may see (or "*"), `exp` expiry and `iat` issue
 * time (seconds), `auth` when the password was last given (a refreshed token keeps it, so a chain of refreshes ends
 * tokenMaxTtlS after the password), and `cred` the user's credential stamp, so that removing or re-keying the user
 * voids its tokens. The key is 32 random bytes in `token.key` in the data directory (mode 0600), made on first use;
 * deleting it (and restarting) voids every token. A token never carries more than the viewer role.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isValidId } from '../protocol/topics.ts';

export const TOKEN_PREFIX = 'tali1.';
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** 32 bytes of HMAC-SHA256 in unpadded base64url. */
const MAC_TEXT = /^[A-Za-z0-9_-]{43}$/;

export interface TokenClaims {
  sub: string;
  devices: readonly string[] | '*';
  iat: number;
  exp: number;
  auth: number;
  cred: string;
}

export class TokenSigner {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  /** Loads the data directory's key, creating it (0600) the first time. */
  static async open(dataDir: string): Promise<TokenSigner> {
    const file = join(dataDir, 'token.key');
    try {
      const key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64url');
      if (key.length >= 32) return new TokenSigner(key);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await mkdir(dataDir, { recursive: true });
    const key = randomBytes(32);
    // 'wx': two processes starting at once must not both write a key; the loser reads the winner's.
    try {
      await writeFile(file, `${key.toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return TokenSigner.open(dataDir);
      throw err;
    }
    return new TokenSigner(key);
  }

  sign(claims: TokenClaims): string {
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return `${TOKEN_PREFIX}${body}.${this.#mac(body).toString('base64url')}`;
  }

  /** The claims of a well-formed, correctly signed, unexpired token; undefined for anything else. */
  verify(token: string, nowS = Math.floor(Date.now() / 1000)): TokenClaims | undefined {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 4096) return undefined;
    const [body, mac, extra] = token.slice(TOKEN_PREFIX.length).split('.');
    if (body === undefined || mac === undefined || extra !== undefined) return undefined;
    // Only the one spelling sign() makes: Node's base64url decoder skips characters outside the alphabet and
    // padding, so `mac + "!"` would decode to the same bytes and pass.
    if (!BASE64URL.test(body) || !MAC_TEXT.test(mac)) return undefined;
    const given = Buffer.from(mac, 'base64url');
    const expected = this.#mac(body);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: TokenClaims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as TokenClaims;
    } catch {
      return undefined;
    }
    if (!isClaims(claims) || claims.exp <= nowS) return undefined;
    return claims;
  }

  #mac(body: string): Buffer {
    return createHmac('sha256', this.#key).update(TOKEN_PREFIX).update(body).digest();
  }
}

function isClaims(c: unknown): c is TokenClaims {
  const t = c as TokenClaims;
  return (
    typeof t === 'object' && t !== null && isValidId(t.sub) && Number.isInteger(t.exp) && Number.isInteger(t.iat) &&
    Number.isInteger(t.auth) && typeof t.cred === 'string' &&
    (t.devices === '*' || (Array.isArray(t.devices) && t.devices.length <= 1000 && t.devices.every(isValidId)))
  );
}

/** "15m", "2h", "1d", "90s" or plain seconds, to seconds; undefined when it is none of these. */
export function parseTtl(text: string): number | undefined {
  const m = /^(\d{1,7})([smhd]?)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(m[1]) * unit;
  return seconds > 0 ? seconds : undefined;
}

/** "cam1,cam2" or "*" to the `devices` claim; undefined if an ID is invalid. */
export function parseDevices(text: string): readonly string[] | '*' | undefined {
  if (text.trim() === '*') return '*';
  const ids = text.split(',').map((s) => s.trim()).filter(Boolean);
  return ids.length > 0 && ids.every(isValidId) ? ids : undefined;
}

/** Opens the data directory's key on first use and keeps it: for the authenticator and the token route. */
export function tokenKeyLoader(dataDir: string): () => Promise<TokenSigner> {
  let signer: Promise<TokenSigner> | undefined;
  return () => (signer ??= TokenSigner.open(dataDir));
}
