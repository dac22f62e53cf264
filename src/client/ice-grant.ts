/**
 * A device's or viewer's own ICE servers (TURN credentials from the bridge, protocol §5.10): the latest `ice-servers`
 * message, kept until it expires, and what a new peer is created with: the bridge card's servers plus these, with
 * their transport policy. A newer message replaces the older one; a live peer keeps what it was created with (its
 * TURN allocation outlives the credentials). Browser-safe.
 */
import type { IceServer, IceServers, IceTransportPolicy } from '../protocol/index.ts';

/** What a peer is created with. */
export interface PeerIceConfig {
  iceServers: IceServer[];
  iceTransportPolicy: IceTransportPolicy;
  /** Whether an unexpired grant of our own is in it (else only the card's servers). */
  withGrant: boolean;
}

/** The fields of an `ice-servers` message that matter here; `ts` absent: the expiry is on this machine's clock. */
export type IceGrantInput = Pick<IceServers, 'iceServers' | 'expiresAt' | 'iceTransportPolicy'> & { ts?: number };

export class IceGrant {
  #servers: IceServer[] = [];
  #policy: IceTransportPolicy = 'all';
  /** Local clock (ms) when the servers stop working; 0: none held. */
  #validUntil = 0;
  #waiters: (() => void)[] = [];
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Takes a newer grant. The expiry is taken relative to the message's `ts` (both on the bridge's clock), so a device
   * whose clock is wrong still knows how long they last.
   */
  update(grant: IceGrantInput): void {
    const now = this.#now();
    const lifetime = grant.ts === undefined ? grant.expiresAt - now : grant.expiresAt - grant.ts;
    this.#servers = grant.iceServers.map((s) => ({ ...s }));
    this.#policy = grant.iceTransportPolicy ?? 'all';
    this.#validUntil = now + Math.max(0, lifetime);
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** Whether unexpired servers are held. */
  get valid(): boolean {
    return this.#validUntil > this.#now();
  }

  /** Milliseconds left before they expire (0 when none). */
  get remainingMs(): number {
    return Math.max(0, this.#validUntil - this.#now());
  }

  /** For a new peer: the card's servers, then ours while they last (the policy holds even after they expire). */
  config(cardServers: readonly IceServer[] = []): PeerIceConfig {
    const valid = this.valid;
    const own = valid ? this.#servers.map((s) => ({ ...s })) : [];
    return { iceServers: [...cardServers.map((s) => ({ ...s })), ...own], iceTransportPolicy: this.#policy, withGrant: valid };
  }

  /** Resolves true when a grant arrives (or one is held), false after `timeoutMs`. */
  arrival(timeoutMs: number): Promise<boolean> {
    if (this.valid) return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== wake);
        resolve(false);
      }, timeoutMs);
      this.#waiters.push(wake);
    });
  }

  /** Forgets what is held. */
  clear(): void {
    this.#servers = [];
    this.#policy = 'all';
    this.#validUntil = 0;
  }
}
