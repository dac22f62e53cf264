import { randomInt } from 'node:crypto';

/** Beyond this lag (event loop stall, suspended laptop) missed ticks are dropped, not sent in a burst. */
const DEFAULT_MAX_CATCH_UP_MS = 1000;

export type MediaTickerOptions = {
  /** Frames (or audio packets) per second. */
  ticksPerSecond: number;
  /** RTP clock rate: 90000 for video (RFC 3551 §5), 8000 for G.711. */
  rtpClockRate: number;
  /** Longest lag caught up by ticking immediately; longer ones skip ticks. Default 1000 ms. */
  maxCatchUpMs?: number;
};

/**
 * Calls back at a fixed rate and gives each tick its RTP timestamp.
 *
 * Drift-free: tick n is due at start + n * interval, computed from the start time rather
 * than by chaining intervals, so timer lateness never accumulates. A late tick is caught up
 * immediately (keeping RTP timestamps exactly interval-spaced); after a stall longer than
 * maxCatchUpMs the missed ticks are skipped, like a camera dropping frames.
 *
 * RTP timestamps (RFC 3550 §5.1) start at a random value and follow the wall clock across
 * stop()/start(), so a restarted stream continues on a consistent, increasing timeline.
 */
export class MediaTicker {
  readonly intervalMs: number;
  /** RTP timestamp units per tick, e.g. 3000 for 30 fps at 90 kHz, 160 for 20 ms at 8 kHz. */
  readonly rtpTicksPerTick: number;
  private readonly rtpClockRate: number;
  private readonly maxCatchUpMs: number;
  private readonly createdAt = performance.now();
  private readonly rtpTimestampAtCreation = randomInt(2 ** 32);
  /** Unwrapped RTP timestamp of the last tick, to keep timestamps increasing across restarts. */
  private lastRtpTimestamp: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: MediaTickerOptions) {
    if (!(options.ticksPerSecond > 0) || !Number.isFinite(options.ticksPerSecond)) {
      throw new Error(`MediaTicker: ticksPerSecond must be a positive number, got ${options.ticksPerSecond}`);
    }
    this.intervalMs = 1000 / options.ticksPerSecond;
    this.rtpClockRate = options.rtpClockRate;
    this.maxCatchUpMs = options.maxCatchUpMs ?? DEFAULT_MAX_CATCH_UP_MS;
    this.rtpTicksPerTick = options.rtpClockRate / options.ticksPerSecond;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Starts ticking; the first tick fires on the next turn of the event loop. */
  start(onTick: (rtpTimestamp: number) => void): void {
    if (this.running) throw new Error('MediaTicker: already started');
    const startedAt = performance.now();
    const elapsedRtpTicks = Math.round(((startedAt - this.createdAt) * this.rtpClockRate) / 1000);
    const wallClockTimestamp = this.rtpTimestampAtCreation + elapsedRtpTicks;
    const runStartTimestamp =
      this.lastRtpTimestamp === undefined
        ? wallClockTimestamp
        : Math.max(wallClockTimestamp, this.lastRtpTimestamp + Math.ceil(this.rtpTicksPerTick));
    let tick = 0;
    let pending: NodeJS.Timeout;
    const schedule = (delayMs: number) => {
      pending = setTimeout(fire, delayMs);
      this.timer = pending;
    };

    const fire = () => {
      const rtpTimestamp = runStartTimestamp + Math.round(tick * this.rtpTicksPerTick);
      this.lastRtpTimestamp = rtpTimestamp;
      onTick(rtpTimestamp >>> 0); // RTP timestamps are 32-bit and wrap around
      if (this.timer !== pending) return; // onTick called stop() (and maybe start() again)

      tick++;
      const now = performance.now();
      const ticksBehind = Math.floor((now - startedAt) / this.intervalMs) - tick;
      if (ticksBehind * this.intervalMs > this.maxCatchUpMs) tick += ticksBehind;
      const dueAt = startedAt + tick * this.intervalMs;
      schedule(Math.max(0, dueAt - now));
    };
    schedule(0);
  }

  /** Stops ticking; no callback runs after this returns. Idempotent. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
