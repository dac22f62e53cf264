import { afterEach, describe, expect, it, vi } from 'vitest';
import { MediaTicker } from '../../devices/camera/media/media-ticker.ts';

/** Resolves with the first `count` RTP timestamps, calling `onTimestamp` on each first. */
function collectTimestamps(ticker: MediaTicker, count: number, onTimestamp: (index: number) => void = () => {}) {
  return new Promise<number[]>((resolve, reject) => {
    const timestamps: number[] = [];
    const timeout = setTimeout(() => reject(new Error(`timed out with ${timestamps.length} ticks`)), 2000);
    ticker.start((timestamp) => {
      timestamps.push(timestamp);
      onTimestamp(timestamps.length - 1);
      if (timestamps.length < count) return;
      ticker.stop();
      clearTimeout(timeout);
      resolve(timestamps);
    });
  });
}

/** Blocks the event loop, as a long garbage collection or a busy bridge would. */
function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

const differences = (values: number[]) => values.slice(1).map((value, i) => (value - values[i]! + 2 ** 32) % 2 ** 32);

describe('MediaTicker', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ticks on a drift-free schedule: 301 ticks in 10 s at 30 per second', () => {
    vi.useFakeTimers();
    // Fake timers truncate 33.33 ms delays to 33 ms: chained intervals would drift to 304 ticks.
    const ticker = new MediaTicker({ ticksPerSecond: 30, rtpClockRate: 90_000 });
    const timestamps: number[] = [];
    ticker.start((timestamp) => timestamps.push(timestamp));
    vi.advanceTimersByTime(10_000);
    ticker.stop();
    expect(timestamps).toHaveLength(301);
    expect(new Set(differences(timestamps))).toEqual(new Set([3000]));
  });

  it('stops for good, idempotently, even when stopped from its own callback', () => {
    vi.useFakeTimers();
    const ticker = new MediaTicker({ ticksPerSecond: 50, rtpClockRate: 8000 });
    let ticks = 0;
    ticker.start(() => {
      if (++ticks === 3) ticker.stop();
    });
    vi.advanceTimersByTime(1000);
    expect(ticks).toBe(3);
    expect(ticker.running).toBe(false);
    ticker.stop();
    expect(() => ticker.start(() => {})).not.toThrow();
    expect(() => ticker.start(() => {})).toThrow(/already started/);
    ticker.stop();
  });

  it('keeps RTP timestamps increasing across stop/start, advanced by the paused time', () => {
    vi.useFakeTimers();
    const ticker = new MediaTicker({ ticksPerSecond: 50, rtpClockRate: 8000 });
    const timestamps: number[] = [];
    ticker.start((timestamp) => timestamps.push(timestamp));
    vi.advanceTimersByTime(30); // ticks at 0 and 20 ms
    ticker.stop();
    vi.advanceTimersByTime(1000);
    ticker.start((timestamp) => timestamps.push(timestamp));
    vi.advanceTimersByTime(1);
    ticker.stop();
    expect(differences(timestamps)).toEqual([160, 8080]); // 1010 ms at 8 kHz after the last tick
  });

  it('catches up a short stall at once, keeping timestamps evenly spaced', async () => {
    const ticker = new MediaTicker({ ticksPerSecond: 100, rtpClockRate: 90_000, maxCatchUpMs: 300 });
    const timestamps = await collectTimestamps(ticker, 8, (index) => index === 1 && blockEventLoop(45));
    expect(new Set(differences(timestamps))).toEqual(new Set([900]));
  });

  it('skips the ticks missed during a stall longer than maxCatchUpMs, like a camera dropping frames', async () => {
    const ticker = new MediaTicker({ ticksPerSecond: 100, rtpClockRate: 90_000, maxCatchUpMs: 30 });
    const timestamps = await collectTimestamps(ticker, 3, (index) => index === 1 && blockEventLoop(60));
    const [, stepOverStall] = differences(timestamps);
    // Ticks are 10 ms apart: a 60 ms stall skips at least 4 of them; timestamps stay on the tick grid.
    expect(stepOverStall).toBeGreaterThanOrEqual(5 * 900);
    expect(stepOverStall! % 900).toBe(0);
  });
});
