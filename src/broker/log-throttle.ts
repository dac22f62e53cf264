/**
 * Warnings that an attacker can trigger at will (refused packets, tripped limits) are logged one per occurrence up
 * to `perSecond` lines per kind each second; past that they are counted, and one line per second says how many
 * were left out. The log stays a record of every occurrence without becoming the attack's amplifier.
 */
import type { Logger } from 'pino';

export class LogThrottle {
  readonly #log: Logger;
  readonly #perSecond: number;
  readonly #windows = new Map<string, { start: number; logged: number; suppressed: number }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(log: Logger, perSecond = 200) {
    this.#log = log;
    this.#perSecond = perSecond;
  }

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = performance.now();
    let w = this.#windows.get(kind);
    if (w === undefined || now - w.start >= 1000) {
      if (w) this.#flush(kind, w);
      w = { start: now, logged: 0, suppressed: 0 };
      this.#windows.set(kind, w);
    }
    if (w.logged < this.#perSecond) {
      w.logged++;
      this.#log.warn(fields, message);
      return;
    }
    w.suppressed++;
    this.#timer ??= setTimeout(() => this.#flushAll(), 1000).unref();
  }

  /** Logs what is still counted and stops the timer. Idempotent. */
  close(): void {
    this.#flushAll();
  }

  #flushAll(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const [kind, w] of this.#windows) this.#flush(kind, w);
    this.#windows.clear();
  }

  #flush(kind: string, w: { suppressed: number }): void {
    if (w.suppressed === 0) return;
    this.#log.warn({ event: kind, suppressed: w.suppressed }, `${w.suppressed} more "${kind}" occurrences in one second, not logged one by one`);
    w.suppressed = 0;
  }
}
