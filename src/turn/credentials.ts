/**
 * Time-limited TURN credentials in the scheme of draft-uberti-behave-turn-rest-00 §2.2 ("TURN REST API"), which
 * coturn (`use-auth-secret` + `static-auth-secret` or its secrets database), MediaMTX and Janus accept: the bridge and
 * the TURN server share a secret and never talk to each other.
 *
 *   username = "<expiry>:<identity>"                       expiry: Unix time in seconds, identity: device or user ID
 *   password = base64(HMAC-SHA1(secret, username))
 *
 * The TURN server recomputes the password from the user name and refuses an expired one when an allocation is made
 * (coturn checks it for new allocations only: a running allocation outlives its credentials, so a session does not
 * drop at the expiry, and a refreshed credential is only needed for the next allocation).
 *
 * The secret stays in a private field: it is never logged, serialised or sent anywhere; only what it signs leaves.
 * WHEP and other profiles call mint() for their own peers' credentials.
 */
import { createHmac } from 'node:crypto';
import type { IceServer } from '../protocol/messages.ts';

/** What one mint gives: ICE servers (the TURN URLs with their user name and password) and when they stop working. */
export interface TurnGrant {
  iceServers: IceServer[];
  /** ms since the Unix epoch: the expiry in the user name (whole seconds). */
  expiresAt: number;
}

export interface TurnCredentialsOptions {
  secret: string;
  /** turn:/turns: URLs of one TURN server (or one pool behind one secret). */
  urls: readonly string[];
  /** Lifetime of a minted credential. */
  ttlS: number;
  /** ms since the epoch (tests). */
  clock?: () => number;
}

/** The user name for `identity`, valid until `expiryS` (Unix seconds). */
export function turnUsername(expiryS: number, identity: string): string {
  return `${expiryS}:${identity}`;
}

/** base64(HMAC-SHA1(secret, username)), as the TURN server computes it (coturn: ns_turn_utils / userdb.c). */
export function turnPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

export class TurnCredentials {
  readonly urls: readonly string[];
  readonly ttlS: number;
  #secret: string;
  readonly #clock: () => number;

  constructor(options: TurnCredentialsOptions) {
    if (options.secret === '') throw new TypeError('TURN secret is empty');
    if (options.urls.length === 0) throw new TypeError('no TURN URLs');
    if (!Number.isInteger(options.ttlS) || options.ttlS < 1) throw new TypeError(`TURN ttl must be a positive integer, got ${options.ttlS}`);
    this.#secret = options.secret;
    this.urls = Object.freeze([...options.urls]);
    this.ttlS = options.ttlS;
    this.#clock = options.clock ?? Date.now;
  }

  /** Credentials for `identity` (a device ID, a user name, the bridge's ID), valid for ttlS from now. */
  mint(identity: string): TurnGrant {
    const expiryS = Math.floor(this.#clock() / 1000) + this.ttlS;
    const username = turnUsername(expiryS, identity);
    return {
      iceServers: [{ urls: [...this.urls], username, credential: turnPassword(this.#secret, username) }],
      expiresAt: expiryS * 1000,
    };
  }

  /**
   * Signs with a new secret from now on. What was minted before stays valid for as long as the TURN server still
   * knows the old secret (coturn accepts several at once: add the new one there first, remove the old one after ttlS).
   */
  rotate(secret: string): void {
    if (secret === '') throw new TypeError('TURN secret is empty');
    this.#secret = secret;
  }

  /** What a log or a JSON dump may show: never the secret. */
  toJSON(): { urls: readonly string[]; ttlS: number } {
    return { urls: this.urls, ttlS: this.ttlS };
  }
}
