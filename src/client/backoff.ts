/**
 * Exponential backoff with jitter, for MQTT reconnects and re-offers. When a bridge restarts, thousands of cameras
 * lose it in the same second; without jitter they would all come back in the same second too, every time.
 */

export interface BackoffOptions {
  /** Delay after the first failure, in ms (default 1000). */
  initialMs: number;
  /** Ceiling of the delay, in ms (default 30 000). */
  maxMs: number;
  /**
   * Share of each delay that is random, 0–1 (default 0.5): the delay is drawn from [(1 − jitter)·d, d], so the
   * ceiling is still respected and the spread grows with the delay.
   */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000, jitter: 0.5 };

export function backoffOptions(partial: Partial<BackoffOptions> = {}): BackoffOptions {
  const options = { ...DEFAULT_BACKOFF, ...partial };
  if (!(options.initialMs >= 0 && options.maxMs >= options.initialMs)) {
    throw new RangeError(`backoff: need 0 ≤ initialMs ≤ maxMs, got ${options.initialMs} and ${options.maxMs}`);
  }
  if (!(options.jitter >= 0 && options.jitter <= 1)) throw new RangeError(`backoff: jitter must be in [0, 1], got ${options.jitter}`);
  return options;
}

/** Delay before retry number `attempt` (0 for the first retry). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponential = options.initialMs * 2 ** Math.min(attempt, 30);
  const ceiling = Math.min(options.maxMs, exponential);
  return Math.round(ceiling * (1 - options.jitter * random()));
}
