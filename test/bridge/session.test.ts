/**
 * A camera session from offer to close, with a real werift peer on the camera side, over TCP and WebSocket:
 * connected and streaming with a timeline; replaced by a re-offer; ended by bye, last will, timeouts and shutdown;
 * and nothing (UDP sockets, timers) left behind.
 */
import { describe, expect, it } from 'vitest';
import type { Session } from '../../src/answerer/session.ts';
import { startBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { createOfferer, type Offerer } from '../helpers/offerer.ts';
import { connectRawDevice, type RawDevice } from '../helpers/raw-device.ts';
import { until, waitFor } from '../helpers/wait.ts';

/** Offer, apply the answer, wait until the bridge's session is in `state`. */
async function negotiate(tb: TestBridge, cam: RawDevice, sessionId: string, until: 'connected' | 'answered' = 'connected') {
  const offerer = await createOfferer();
  const opened = waitFor<[Session]>(tb.bridge.answerer, 'session', (s) => s.sessionId === sessionId);
  await cam.send(cam.message('offer', sessionId, 1, { sdp: offerer.sdp }));
  const [session] = await opened;
  const answer = await cam.down.next((m) => m.type === 'answer' && m.sessionId === sessionId, 5000, 'answer');
  expect(answer.seq).toBe(1);
  // The offer says actpass; the bridge takes the DTLS server role so the camera's ClientHello goes first (Peer.answer).
  expect(answer.sdp).toMatch(/^a=setup:passive\r?$/m);
  if (until === 'answered') return { offerer, session };
  const connected = session.state === 'connected' ? Promise.resolve() : waitFor(session, 'state', (s) => s === 'connected');
  // Both ends: as DTLS server the bridge is done one flight before the camera can send SRTP.
  const cameraConnected = new Promise<void>((resolve) => offerer.pc.connectionStateChange.subscribe((s) => s === 'connected' && resolve()));
  await offerer.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
  await Promise.all([connected, cameraConnected]);
  return { offerer, session };
}

function udpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap' || r === 'UDPWRAP').length;
}

describe.each(TRANSPORTS)('camera session over %s', (transport) => {
  it('answers, connects, streams and keeps a timeline', async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport);
    const { offerer, session } = await negotiate(tb, cam, 'sess-stream');
    const keyframe = waitFor(session, 'keyframe');
    offerer.sendVideoPacket(1);
    await keyframe;
    expect(session.state).toBe('streaming');
    const { timeline, tracks } = session.stats;
    expect(Object.keys(timeline)).toEqual(['offer', 'answer', 'iceConnected', 'connected', 'firstRtp', 'firstKeyframe']);
    expect(timeline.answer).toBeLessThanOrEqual(timeline.connected as number);
    expect(tracks).toEqual([expect.objectContaining({ kind: 'video', codec: 'VP8', packets: 1, keyframes: 1 })]);
  });

  it('a re-offer replaces the live session, which gets bye "replaced"', async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport);
    const first = await negotiate(tb, cam, 'sess-first', 'answered');
    const closed = waitFor(first.session, 'closed');
    const second = await negotiate(tb, cam, 'sess-second', 'answered');
    expect(await closed).toEqual(['replaced']);
    const bye = await cam.down.next((m) => m.type === 'bye', 5000, 'bye');
    expect(bye).toMatchObject({ sessionId: 'sess-first', reason: 'replaced' });
    expect(tb.bridge.answerer.sessions.get('cam1')).toBe(second.session);
  });

  it('an offer reusing the live sessionId is a duplicate (dropped), one with seq ≠ 1 is refused (§5.1, §8)', async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport);
    const { session } = await negotiate(tb, cam, 'sess-reuse', 'answered');
    const { sdp } = await createOfferer();
    await cam.send(cam.message('offer', 'sess-reuse', 1, { sdp }));
    await cam.send(cam.message('offer', 'sess-other', 2, { sdp }));
    // MQTT keeps the order on the down topic: had the duplicate been answered, its reply would be the first error.
    const refusal = await cam.down.next((m) => m.type === 'error', 5000, 'refusal');
    expect(refusal).toMatchObject({ code: 'TALI_ERR_INVALID_MESSAGE', sessionId: 'sess-other', ref: { type: 'offer', seq: 2 } });
    expect(session.state).not.toBe('closed');
    expect(tb.bridge.answerer.sessions.get('cam1')).toBe(session);
  });

  it('a stale candidate of the live session is refused and the session goes on (§11)', async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport);
    const { session } = await negotiate(tb, cam, 'sess-stale', 'answered');
    await cam.send({ ...cam.message('candidate', 'sess-stale', 2, { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 5000 typ host' }), ts: 1 });
    expect(await cam.down.next((m) => m.type === 'error', 5000, 'refusal')).toMatchObject({ code: 'TALI_ERR_STALE', sessionId: 'sess-stale' });
    expect(session.state).not.toBe('closed');
  });

  it('bye from the device closes the session without a reply', async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport);
    const { session } = await negotiate(tb, cam, 'sess-bye');
    const closed = waitFor(session, 'closed');
    await cam.send(cam.message('bye', 'sess-bye', 2, { reason: 'normal' }));
    expect(await closed).toEqual(['normal']);
    expect(tb.bridge.answerer.sessions.size).toBe(0);
    expect(cam.down.messages.some((m) => m.json?.type === 'bye')).toBe(false);
  });

  it('the last will (device vanished) closes the session as "offline"', async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport, 'cam1', { will: true });
    const { session } = await negotiate(tb, cam, 'sess-will');
    const closed = waitFor(session, 'closed');
    cam.client.stream.destroy(); // no DISCONNECT: the broker publishes the will (MQTT-3.1.2-8)
    expect(await closed).toEqual(['offline']);
  });

  it('a camera that never connects is dropped after connectTimeoutMs with bye "timeout"', async () => {
    const tb = await startBridge({ connectTimeoutMs: 1000 });
    const cam = await connectRawDevice(tb, transport);
    const { session } = await negotiate(tb, cam, 'sess-silent', 'answered');
    expect(await waitFor(session, 'closed')).toEqual(['timeout']);
    expect(await cam.down.next((m) => m.type === 'bye', 5000, 'bye')).toMatchObject({ sessionId: 'sess-silent', reason: 'timeout', seq: 2 });
  });

  it('a connected camera that sends no media is dropped after mediaTimeoutMs', async () => {
    const tb = await startBridge({ mediaTimeoutMs: 1000 });
    const cam = await connectRawDevice(tb, transport);
    const { session } = await negotiate(tb, cam, 'sess-mute');
    expect(await waitFor(session, 'closed')).toEqual(['timeout']);
  });

  it('shutdown says bye "shutdown", marks the bridge offline and releases every UDP socket', async () => {
    const baseline = udpSockets();
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport);
    const bridgeCards = tb.bridge.topics.allBridges();
    await cam.client.subscribeAsync(bridgeCards, { qos: 1 });
    expect(await cam.down.next((m) => m.type === 'bridge-status', 5000, 'bridge card')).toMatchObject({
      state: 'online',
      bridgeId: tb.bridge.config.bridgeId,
      maxMessageBytes: 16384,
      iceServers: [],
    });
    const { offerer } = await negotiate(tb, cam, 'sess-shutdown');
    expect(udpSockets()).toBeGreaterThan(baseline);
    const closing = tb.bridge.close();
    expect(await cam.down.next((m) => m.type === 'bye', 5000, 'bye')).toMatchObject({ reason: 'shutdown' });
    expect(await cam.down.next((m) => m.type === 'bridge-status', 5000, 'offline card')).toMatchObject({ state: 'offline' });
    await closing;
    await offerer.pc.close(); // the camera's own sockets; what is left after this would be the bridge's
    await until(() => udpSockets() === baseline, 2000, 'UDP sockets back to the baseline');
  });
});
