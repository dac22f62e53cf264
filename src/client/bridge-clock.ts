/**
 * A client's clock as the bridge sees it. The bridge refuses a message whose `ts` is too far from its own clock
 * (TALI_ERR_STALE) and stamps that error with its own time; a camera with no RTC or a laptop with a wrong clock
 * learns the offset from it and stamps every later message on the bridge's clock. Browser-safe.
 */
import type { ErrorMessage } from '../protocol/index.ts';

export class BridgeClock {
  readonly #local: () => number;
  #offsetMs = 0;

  /** `local` is the client's own clock (default Date.now); tests set it wrong on purpose. */
  constructor(local: () => number = Date.now) {
    this.#local = local;
  }

  /** Milliseconds added to the local clock, learnt from the bridge's TALI_ERR_STALE. */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** The local clock corrected to the bridge's: what goes into `ts`. */
  now(): number {
    return Math.round(this.#local() + this.#offsetMs);
  }

  /** Learns from an error of the bridge: a TALI_ERR_STALE's own `ts` is the bridge clock. Other errors change nothing. */
  learn(error: ErrorMessage): void {
    if (error.code === 'TALI_ERR_STALE') this.#offsetMs = error.ts - this.#local();
  }
}
