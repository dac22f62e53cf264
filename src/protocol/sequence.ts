/**
 * Sequence numbers and duplicates. Signaling goes at QoS 1, which is at-least-once: a message may arrive twice
 * (MQTT-4.3.2). Each sender numbers its messages per session from 1, and each receiver drops a (sessionId, seq) it
 * has already seen. Messages whose `ts` is outside the acceptance window are stale (see `isFresh`).
 */

/** Per-session outgoing counters. */
export class SequenceCounter {
  readonly #next = new Map<string, number>();

  next(sessionId: string): number {
    const seq = (this.#next.get(sessionId) ?? 0) + 1;
    this.#next.set(sessionId, seq);
    return seq;
  }

  forget(sessionId: string): void {
    this.#next.delete(sessionId);
  }
}

/**
 * Remembers the last `perSession` sequence numbers of at most `sessions` sessions (oldest forgotten first), so a
 * peer that floods session IDs cannot grow it without bound.
 */
export class DuplicateFilter {
  readonly #seen = new Map<string, Set<number>>();
  readonly #sessions: number;
  readonly #perSession: number;

  constructor(options: { sessions?: number; perSession?: number } = {}) {
    this.#sessions = options.sessions ?? 64;
    this.#perSession = options.perSession ?? 256;
  }

  /** True the first time a (sessionId, seq) is seen, false for a duplicate. */
  accept(sessionId: string, seq: number): boolean {
    let seen = this.#seen.get(sessionId);
    if (seen === undefined) {
      seen = new Set();
      this.#seen.set(sessionId, seen);
      if (this.#seen.size > this.#sessions) this.#seen.delete(this.#seen.keys().next().value as string);
    } else if (seen.has(seq)) {
      return false;
    }
    seen.add(seq);
    if (seen.size > this.#perSession) seen.delete(seen.values().next().value as number);
    return true;
  }

  forget(sessionId: string): void {
    this.#seen.delete(sessionId);
  }
}

/** `ts` within ±maxAgeMs of the receiver's clock; maxAgeMs 0 turns the check off. */
export function isFresh(ts: number, now: number, maxAgeMs: number): boolean {
  return maxAgeMs === 0 || Math.abs(now - ts) <= maxAgeMs;
}
