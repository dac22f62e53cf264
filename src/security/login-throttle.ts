/**
 * Every credential check from outside (MQTT CONNECT, POST /api/token, the admin API's Basic logins) goes through
 * one LoginThrottle per bridge, so that guessing costs the guesser and not everyone else:
 *
 *  - Failures per address: a token bucket (10 at once, one more every 6 s). A check **takes** a token before it
 *    runs and gives it back when it succeeds. Checking first and charging after the outcome (as tali did) let 400
 *    concurrent wrong passwords from one address all pass the check before any of them failed: 400 scrypt runs.
 *  - Slow checks (scrypt: human passwords, and unknown names, which cost the same so that timing does not tell
 *    which names exist) need a slot: at most `maxChecks` at once in the process (scrypt runs on libuv's 4 threads,
 *    which file and DNS work share), up to `maxWaiting` queued behind them (256), and at most `maxChecksPerAddress`
 *    running or queued for one address. Over either bound the attempt is refused as busy (MQTT CONNACK 3, HTTP 503),
 *    with its token given back: nothing was checked. So one address keeps at most 2 of the 4 slots and a legitimate
 *    login from elsewhere is checked at once.
 *  - Fast checks (HMAC: tokens, generated device secrets) need no slot; their token comes back in the same tick.
 *
 *   begin(address) ──► attempt ── slot() (slow checks only) ── check ── succeeded() ── end()
 *        │ no token                 │ over a bound
 *        ▼                          ▼
 *    'throttled'                 'busy'
 */
import { BucketsByIdentity, type TokenBucket } from './token-bucket.ts';

export interface LoginThrottleOptions {
  /** Failed logins one address may have at once (default 10). */
  failureBurst?: number;
  /** Seconds until one more failure is allowed (default 6). */
  failureRefillS?: number;
  /** Slow checks running at once in the process (default 4). */
  maxChecks?: number;
  /** Slow checks waiting for a slot (default 256, as many as maxPendingConnections lets wait for CONNACK). */
  maxWaiting?: number;
  /** Slow checks running or waiting for one address (default 2). */
  maxChecksPerAddress?: number;
}

export type LoginRefusal = 'throttled' | 'busy';

export class LoginThrottle {
  readonly #failures: BucketsByIdentity;
  readonly #maxChecks: number;
  readonly #maxWaiting: number;
  readonly #maxPerAddress: number;
  readonly #perAddress = new Map<string, number>();
  readonly #waiting: (() => void)[] = [];
  #running = 0;
  /** Slow checks that ran, since start (tests and metrics read it). */
  slowChecks = 0;

  constructor(options: LoginThrottleOptions = {}) {
    this.#failures = new BucketsByIdentity(1 / (options.failureRefillS ?? 6), options.failureBurst ?? 10);
    this.#maxChecks = options.maxChecks ?? 4;
    this.#maxWaiting = options.maxWaiting ?? 256;
    this.#maxPerAddress = options.maxChecksPerAddress ?? 2;
  }

  /** Slow checks running now, and waiting for a slot. */
  get checks(): { running: number; waiting: number } {
    return { running: this.#running, waiting: this.#waiting.length };
  }

  /** Takes a failure token for one login attempt from `address`; 'throttled' when it has none left. */
  begin(address: string): LoginAttempt | 'throttled' {
    const held = this.#failures.acquire(address);
    if (!held.bucket.take()) {
      held.release();
      return 'throttled';
    }
    return new LoginAttempt(this, address, held);
  }

  /** @internal A slot for a slow check of `address`, or false when a bound says no. */
  async acquireSlot(address: string): Promise<boolean> {
    const mine = this.#perAddress.get(address) ?? 0;
    if (mine >= this.#maxPerAddress) return false;
    if (this.#running >= this.#maxChecks && this.#waiting.length >= this.#maxWaiting) return false;
    this.#perAddress.set(address, mine + 1);
    if (this.#running < this.#maxChecks) this.#running++;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve)); // the releaser hands its slot over
    this.slowChecks++;
    return true;
  }

  /** @internal */
  releaseSlot(address: string): void {
    const mine = (this.#perAddress.get(address) ?? 1) - 1;
    if (mine === 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, mine);
    const next = this.#waiting.shift();
    if (next) next();
    else this.#running--;
  }
}

export class LoginAttempt {
  readonly #throttle: LoginThrottle;
  readonly #address: string;
  readonly #held: { bucket: TokenBucket; release: () => void };
  #slot = false;
  #settled = false;

  constructor(throttle: LoginThrottle, address: string, held: { bucket: TokenBucket; release: () => void }) {
    this.#throttle = throttle;
    this.#address = address;
    this.#held = held;
  }

  /** Before a slow check: waits for a slot; false (the token given back) when the process or the address is busy. */
  async slot(): Promise<boolean> {
    if (this.#slot) return true;
    this.#slot = await this.#throttle.acquireSlot(this.#address);
    if (!this.#slot) this.notCharged();
    return this.#slot;
  }

  /** The credentials were right: the token comes back. */
  succeeded(): void {
    this.notCharged();
  }

  /** The attempt ended for a reason that is not a wrong credential (busy, bad client ID, …): the token comes back. */
  notCharged(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#held.bucket.refund();
  }

  /** Frees the slot and the address's bucket hold. Idempotent; call it in `finally`. */
  end(): void {
    if (this.#slot) {
      this.#slot = false;
      this.#throttle.releaseSlot(this.#address);
    }
    this.#settled = true;
    this.#held.release();
  }
}
