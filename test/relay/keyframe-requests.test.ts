/**
 * The relay's keyframe request policy on its own (src/relay/keyframe-requests.ts), on a fake clock: one outstanding
 * request per camera, needs meanwhile join it, the camera's keyframe answers it, an unanswered one is sent again.
 * The same policy through a real bridge and camera: test/relay/relay.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyframeRequests, type KeyframeRequestOptions } from '../../src/relay/keyframe-requests.ts';

function requests(options: Partial<Omit<KeyframeRequestOptions, 'send'>> = {}): { kf: KeyframeRequests; sent: () => number } {
  let sent = 0;
  const kf = new KeyframeRequests({ send: () => sent++, retryMs: 500, minIntervalMs: 0, ...options });
  return { kf, sent: () => sent };
}

describe('keyframe requests to one camera', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a need is sent at once; needs while it is outstanding join it (a crowd costs the camera one request)', () => {
    const { kf, sent } = requests();
    kf.needed();
    expect(sent()).toBe(1);
    expect(kf.state).toBe('outstanding');
    for (let i = 0; i < 99; i++) kf.needed();
    expect(sent()).toBe(1);
    expect(kf.coalesced).toBe(99);
    kf.close();
  });

  it('the camera\'s keyframe answers the request: the next need is sent at once, however soon (no fixed window)', () => {
    const { kf, sent } = requests();
    kf.needed();
    vi.advanceTimersByTime(20);
    kf.received();
    expect(kf.state).toBe('idle');
    // Back-to-back watches: the next viewer's need right after the first one's keyframe.
    kf.needed();
    expect(sent()).toBe(2);
    kf.received();
    kf.needed();
    expect(sent()).toBe(3);
    expect(kf.coalesced).toBe(0);
    kf.close();
  });

  it('an unanswered request is sent again after retryMs, then again only while needs keep coming', () => {
    const { kf, sent } = requests({ retryMs: 500 });
    kf.needed();
    vi.advanceTimersByTime(499);
    expect(sent()).toBe(1);
    // The first timeout retries even if nobody asked again (the PLI, or its keyframe, may have been lost).
    vi.advanceTimersByTime(1);
    expect(sent()).toBe(2);
    expect(kf.retried).toBe(1);
    // Asked again meanwhile: one more retry.
    kf.needed();
    vi.advanceTimersByTime(500);
    expect(sent()).toBe(3);
    // Nobody asked since: the request is given up, and the next need is sent at once.
    vi.advanceTimersByTime(500);
    expect(sent()).toBe(3);
    expect(kf.state).toBe('idle');
    vi.advanceTimersByTime(10_000);
    expect(sent()).toBe(3);
    kf.needed();
    expect(sent()).toBe(4);
    kf.close();
  });

  it('a keyframe stops the retries', () => {
    const { kf, sent } = requests({ retryMs: 500 });
    kf.needed();
    kf.needed();
    kf.received();
    vi.advanceTimersByTime(5000);
    expect(sent()).toBe(1);
    expect(kf.retried).toBe(0);
  });

  it('with a floor (minIntervalMs), a need too soon after the last request waits for its end, and a keyframe meanwhile answers it', () => {
    const { kf, sent } = requests({ minIntervalMs: 200 });
    kf.needed();
    kf.received();
    vi.advanceTimersByTime(50);
    kf.needed();
    kf.needed();
    expect(sent()).toBe(1);
    expect(kf.state).toBe('deferred');
    vi.advanceTimersByTime(149);
    expect(sent()).toBe(1);
    vi.advanceTimersByTime(1);
    expect(sent()).toBe(2);
    expect(kf.state).toBe('outstanding');
    kf.received();
    vi.advanceTimersByTime(100);
    kf.needed();
    expect(kf.state).toBe('deferred');
    kf.received();
    vi.advanceTimersByTime(1000);
    expect(sent()).toBe(2);
    expect(kf.state).toBe('idle');
  });

  it('close (and a new camera session, reset) cancels what is outstanding or deferred', () => {
    const { kf, sent } = requests({ minIntervalMs: 200 });
    kf.needed();
    kf.reset();
    kf.needed();
    expect(sent()).toBe(1);
    kf.close();
    vi.advanceTimersByTime(10_000);
    expect(sent()).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
