/**
 * The fleet's bookkeeping without a network: a session that emits RTP as werift would (a keyframe event on the first
 * packet of a keyframe, then the packets), so that what is kept, its bound and the rates can be checked exactly.
 */
import { EventEmitter } from 'node:events';
import { RtpHeader, RtpPacket } from 'werift';
import { expect, it } from 'vitest';
import type { Session } from '../../src/answerer/session.ts';
import { CameraMonitor } from '../../src/fleet/camera-monitor.ts';
import { Fleet, type FleetOptions } from '../../src/fleet/fleet.ts';
import type { RemoteTrack } from '../../src/webrtc/peer.ts';

class FakeSession extends EventEmitter {
  state = 'streaming';
  readonly sessionId = 's1';
  readonly codecs = [{ kind: 'video', codec: 'VP8' }];
  readonly track: RemoteTrack = { kind: 'video', codec: 'VP8', ssrc: 1 };
  #seq = 0;
  #ts = 0;
  keyframeRequests = 0;
  readonly deviceId: string;
  constructor(deviceId: string) {
    super();
    this.deviceId = deviceId;
  }
  requestKeyframe(): void {
    this.keyframeRequests++;
  }
  /** One VP8 frame of `bytes` in one packet: descriptor S=1 PID=0, then a payload whose P bit says key or not. */
  frame(bytes: number, key: boolean): void {
    const payload = Buffer.alloc(bytes + 1, 0x55);
    payload[0] = 0x10;
    payload[1] = key ? 0x00 : 0x01;
    this.#ts += 3000;
    const packet = new RtpPacket(new RtpHeader({ sequenceNumber: this.#seq++ & 0xffff, timestamp: this.#ts, marker: true, payloadType: 96, ssrc: 1 }), payload);
    if (key) this.emit('keyframe', this.track);
    this.emit('rtp', this.track, packet, performance.now());
  }
}

/** Monitors on this thread, as with one media worker. */
const media: FleetOptions['media'] = { monitor: (session, onKeyframe) => new CameraMonitor(session as Session, onKeyframe) };

function fleetWith(maxBytes: number, ...ids: string[]): { fleet: Fleet; sessions: FakeSession[] } {
  const fleet = new Fleet({ media, decoder: undefined, maxBytes });
  const answerer = new EventEmitter() as EventEmitter & { sessions: Map<string, Session> };
  answerer.sessions = new Map();
  fleet.attach(answerer as never);
  const sessions = ids.map((id) => new FakeSession(id));
  for (const s of sessions) answerer.emit('session', s as unknown as Session);
  return { fleet, sessions };
}

it('keeps the latest keyframe of each camera, not delta frames, within maxBytes (least recently asked for goes first)', async () => {
  const { fleet, sessions } = fleetWith(25_000, 'a', 'b', 'c');
  const [a, b, c] = sessions as [FakeSession, FakeSession, FakeSession];
  a.frame(10_000, true);
  a.frame(20_000, false); // a delta frame is never kept
  b.frame(10_000, true);
  expect(fleet.keptBytes).toBe(20_000);
  await fleet.still('a'); // a is used: b is now the oldest
  c.frame(10_000, true); // 30 000 > 25 000: b goes
  expect(fleet.keptBytes).toBe(20_000);
  expect(fleet.health().map((h) => [h.deviceId, h.stillAt !== undefined])).toEqual([['a', true], ['b', false], ['c', true]]);
  a.frame(12_000, true); // a newer keyframe replaces a's, and counts once
  expect(fleet.keptBytes).toBe(22_000);
  fleet.forget('a');
  expect(fleet.keptBytes).toBe(10_000);
  fleet.close();
});

it('asks a streaming camera for a keyframe when its still is old, at most once per refreshMs', async () => {
  const fleet = new Fleet({ media, decoder: undefined, refreshMs: 60_000 });
  const answerer = Object.assign(new EventEmitter(), { sessions: new Map() });
  fleet.attach(answerer as never);
  const cam = new FakeSession('cam');
  answerer.emit('session', cam);
  expect(await fleet.still('cam')).toBeUndefined(); // none yet: one request
  await fleet.still('cam');
  expect(cam.keyframeRequests).toBe(1);
  cam.frame(1000, true);
  expect(fleet.health()[0]?.stillAt).toBeGreaterThan(0);
  fleet.close();
});
