/**
 * A camera's packets are fanned out to its viewers after the loop's I/O pass that read them, not where they are read
 * (src/media/host.ts): what else is ready in that pass (MQTT in one-worker mode, a worker's commands) is not held back
 * by the per-viewer encryption and sends. One-worker mode, where the session and the viewer are the objects themselves.
 */
import { expect, it, onTestFinished } from 'vitest';
import type { Session } from '../../src/answerer/session.ts';
import type { ViewerSession } from '../../src/relay/viewer.ts';
import { startsKeyframe } from '../../src/webrtc/keyframe.ts';
import { createBridge } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { connectRawViewer } from '../helpers/raw-viewer.ts';
import { streamCamera } from '../helpers/streaming-camera.ts';
import { explained } from '../helpers/media-state.ts';
import { withTimeout } from '../helpers/wait.ts';

it("forwards a camera's packets after the pass that read them, in the order read, and still delivers them", async () => {
  const tb = await createBridge({ mediaWorkers: 1 });
  onTestFinished(() => tb.close());
  const cam = await connectRawDevice(tb, 'mqtt', 'cam1');
  await streamCamera(tb, cam, 'sess-cam1');
  const session = tb.bridge.answerer.sessions.get('cam1') as unknown as Session;

  const alice = await connectRawViewer(tb, 'mqtt', 'alice');
  const peer = await alice.createPeer();
  await alice.send('watch', 'view-alice', 1, { deviceId: 'cam1', sdp: peer.sdp });
  const answer = await alice.down.next((m) => m.type === 'answer' && m.sessionId === 'view-alice', 10_000, 'viewer answer');
  const viewer = [...tb.bridge.relay.viewers.values()][0] as unknown as ViewerSession;

  // While a received packet's 'rtp' listeners run (the host's first, then ours), no viewer may be sent anything.
  let inRead = false;
  session.prependListener('rtp', () => (inRead = true));
  session.on('rtp', () => (inRead = false));
  const read: number[] = [];
  session.on('rtp', (track, packet) => track.kind === 'video' && read.push(packet.header.sequenceNumber));
  const forwarded: number[] = [];
  let duringRead = 0;
  const forward = viewer.forward.bind(viewer);
  viewer.forward = (track, packet) => {
    if (inRead) duringRead++;
    if (track.kind === 'video') forwarded.push(packet.header.sequenceNumber);
    forward(track, packet);
  };

  await peer.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
  // Seen under load only (full suites): fewer than 30 in 15 s. Say where the media stopped.
  const sides = () => ({ read: read.length, forwarded: forwarded.length, peer: { state: peer.pc.connectionState, video: peer.received.video.length } });
  const video = await explained(tb, withTimeout(peer.packets('video', 30), 15_000, '30 video packets'), sides);
  expect(startsKeyframe('VP8', video[0]!.payload)).toBe(true);
  expect(forwarded.length).toBeGreaterThanOrEqual(30);
  expect(duringRead).toBe(0);
  // Forwarded once each, in the order read (packets queued before these listeners came lead `forwarded`; the last
  // pass's may still be queued).
  const tail = forwarded.slice(forwarded.findIndex((seq) => read.includes(seq)));
  const from = read.indexOf(tail[0]!);
  expect(tail.length).toBeGreaterThanOrEqual(20);
  expect(read.slice(from, from + tail.length)).toEqual(tail);
});
