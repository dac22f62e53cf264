/**
 * A token bucket per client: `burst` messages at once, refilled at `ratePerS`. Signaling is bursty (an offer and a
 * dozen candidates within a second when a session starts) and then quiet, which a bucket allows and a fixed window
 * per second does not.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(ratePerS: number, burst: number, now = performance.now()) {
    this.#rate = ratePerS;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** True when the bucket has refilled completely (it is then no different from a new one). */
  full(now = performance.now()): boolean {
    return this.#tokens + ((now - this.#last) / 1000) * this.#rate >= this.#burst;
  }

  /** Whether a token is there, without taking it. */
  peek(now = performance.now()): boolean {
    return this.#tokens + ((now - this.#last) / 1000) * this.#rate >= 1;
  }

  /** Gives back a token taken for something that turned out not to cost one (never above the burst). */
  refund(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + 1);
  }

  /** Takes one token if there is one. */
  take(now = performance.now()): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/**
 * Buckets shared by every connection of one client identity, so reconnecting does not refill them. A bucket that has
 * refilled is the same as a new one, so an identity's entry goes once it has no connection and is full again.
 */
export class BucketsByIdentity {
  readonly #entries = new Map<string, { bucket: TokenBucket; connections: number }>();
  readonly #rate: number;
  readonly #burst: number;
  #releases = 0;

  constructor(ratePerS: number, burst: number) {
    this.#rate = ratePerS;
    this.#burst = burst;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The identity's bucket, counting one more connection on it; `release()` when that connection closes. */
  acquire(key: string): { bucket: TokenBucket; release: () => void } {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { bucket: new TokenBucket(this.#rate, this.#burst), connections: 0 };
      this.#entries.set(key, entry);
    }
    entry.connections++;
    const held = entry;
    let released = false;
    return {
      bucket: held.bucket,
      release: () => {
        if (released) return;
        released = true;
        held.connections--;
        if (held.connections === 0 && held.bucket.full()) this.#entries.delete(key);
        // Entries left half-empty are swept now and then, so the map stays near the number of live identities.
        if (++this.#releases % 256 === 0) this.#sweep();
      },
    };
  }

  #sweep(): void {
    for (const [key, entry] of this.#entries) if (entry.connections === 0 && entry.bucket.full()) this.#entries.delete(key);
  }
}
