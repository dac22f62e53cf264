/**
 * The SDK's pure parts, without a network: backoff delays, a session's candidate bookkeeping, session IDs and the
 * typed emitter.
 */
import { describe, expect, it } from 'vitest';
import { backoffDelay, backoffOptions, DEFAULT_BACKOFF } from '../../src/client/backoff.ts';
import { CameraSession, randomSessionId } from '../../devices/sdk/camera-session.ts';
import type { DevicePeer, IceCandidateInit } from '../../devices/sdk/device-peer.ts';
import { TypedEmitter } from '../../src/client/emitter.ts';
import { SESSION_ID_PATTERN, type BridgeStatus } from '../../src/protocol/index.ts';

describe('backoff', () => {
  it('doubles from initialMs up to maxMs', () => {
    const noJitter = backoffOptions({ initialMs: 100, maxMs: 1000, jitter: 0 });
    expect([0, 1, 2, 3, 4, 10, 1000].map((n) => backoffDelay(n, noJitter))).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('draws each delay from [(1 − jitter)·d, d]', () => {
    expect(backoffDelay(2, DEFAULT_BACKOFF, () => 0)).toBe(4000);
    expect(backoffDelay(2, DEFAULT_BACKOFF, () => 0.999999)).toBe(2000);
  });

  it('refuses nonsense', () => {
    expect(() => backoffOptions({ initialMs: 10, maxMs: 5 })).toThrow(RangeError);
    expect(() => backoffOptions({ jitter: 2 })).toThrow(RangeError);
  });
});

function fakePeer(): DevicePeer & { added: (IceCandidateInit | null)[] } {
  const added: (IceCandidateInit | null)[] = [];
  return {
    added,
    onLocalCandidate: undefined,
    onStateChange: undefined,
    createOffer: async () => '',
    applyAnswer: async () => {},
    addRemoteCandidate: (candidate) => void added.push(candidate),
    close: async () => {},
  };
}

const bridge = { bridgeId: 'b1', ts: 1 } as BridgeStatus;
const host = (port: number): IceCandidateInit => ({ candidate: `candidate:1 1 udp 2130706431 192.0.2.7 ${port} typ host`, sdpMid: '0' });

describe('CameraSession', () => {
  it('holds local candidates until the offer is out, and does not repeat those the offer carries', () => {
    const session = new CameraSession('session-1', fakePeer(), bridge);
    expect(session.localCandidate(host(1000))).toBeUndefined();
    expect(session.localCandidate(host(2000))).toBeUndefined();
    expect(session.localCandidate(null)).toBeUndefined();

    const sdp = `v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=${host(1000).candidate}\r\n`;
    expect(session.offerSent(sdp)).toEqual([host(2000), null]);
    expect(session.localCandidate(host(3000))).toEqual(host(3000));
    expect(session.localCandidate(null)).toBeUndefined(); // end-of-candidates goes once
  });

  it('holds remote candidates until the answer is applied', () => {
    const peer = fakePeer();
    const session = new CameraSession('session-1', peer, bridge);
    session.remoteCandidate(host(1000));
    session.remoteCandidate(null);
    expect(peer.added).toEqual([]);
    session.answerApplied();
    session.remoteCandidate(host(2000));
    expect(peer.added).toEqual([host(1000), null, host(2000)]);
  });

  it('keeps a timeline relative to its opening, first mark wins', () => {
    const session = new CameraSession('session-1', fakePeer(), bridge);
    session.mark('offerSent');
    const first = session.timeline.offerSent;
    session.mark('offerSent');
    expect(session.timeline.offerSent).toBe(first);
    expect(session.info).toMatchObject({ sessionId: 'session-1', bridgeId: 'b1', phase: 'offering' });
  });
});

describe('randomSessionId', () => {
  it('is valid for the protocol and unique', () => {
    const ids = Array.from({ length: 100 }, randomSessionId);
    for (const id of ids) expect(id).toMatch(new RegExp(SESSION_ID_PATTERN));
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('TypedEmitter', () => {
  class Clock extends TypedEmitter<{ tick: [n: number]; done: [] }> {
    fire(n: number): void {
      this.emit('tick', n);
    }
  }

  it('calls listeners in order, once() once, and stops after off()', () => {
    const clock = new Clock();
    const seen: string[] = [];
    const off = clock.on('tick', (n) => seen.push(`on ${n}`));
    clock.once('tick', (n) => seen.push(`once ${n}`));
    clock.fire(1);
    clock.fire(2);
    off();
    clock.fire(3);
    expect(seen).toEqual(['on 1', 'once 1', 'on 2']);
    expect(clock.listenerCount('tick')).toBe(0);
  });
});
