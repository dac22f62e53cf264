/**
 * The simulated camera against a real bridge, over MQTT/TCP and MQTT/WebSocket: it connects, offers, streams VP8 or
 * H264 (and G.711) to the answerer, and answers a keyframe request with a keyframe.
 */
import { describe, expect, it } from 'vitest';
import type { RtpPacket } from 'werift';
import type { Session } from '../../src/answerer/session.ts';
import type { RemoteTrack } from '../../src/webrtc/peer.ts';
import { startBridge, TRANSPORTS } from '../helpers/bridge.ts';
import { waitFor } from '../helpers/wait.ts';
import { startCamera } from './helpers.ts';

describe.each(TRANSPORTS)('simulated camera over %s', (transport) => {
  it.each(['VP8', 'H264'] as const)('streams %s and PCMU to the answerer', async (codec) => {
    const tb = await startBridge({ mediaWorkers: 1 }); // reads the session's RTP: on the main thread
    const opened = waitFor<[Session]>(tb.bridge.answerer, 'session');
    const camera = await startCamera(tb, transport, { codec, audio: 'PCMU' });
    const [session] = await opened;

    const [video] = await waitFor<[RemoteTrack, RtpPacket]>(session, 'rtp', (track) => track.kind === 'video');
    expect(video.codec).toBe(codec);
    const [audio] = await waitFor<[RemoteTrack, RtpPacket]>(session, 'rtp', (track) => track.kind === 'audio');
    expect(audio.codec).toBe('PCMU');

    const summary = camera.summary();
    expect(summary).toMatchObject({ deviceId: 'cam1', codec, audio: 'PCMU', sessionsOpened: 1, sessionsConnected: 1 });
    expect(summary.lastSession?.sessionId).toBe(session.sessionId);
    const { offerSent, answerReceived, connected } = summary.lastSession?.timeline ?? {};
    expect(offerSent).toBeGreaterThanOrEqual(0);
    expect(answerReceived).toBeGreaterThanOrEqual(offerSent as number);
    expect(connected).toBeGreaterThanOrEqual(answerReceived as number);
    expect(summary.packetsSent).toBeGreaterThan(0);
    expect(summary.keyframesSent).toBeGreaterThanOrEqual(1); // every stream starts with one
  });

  it('answers a PLI from the bridge with a keyframe at once', async () => {
    const tb = await startBridge({ mediaWorkers: 1 }); // reads the session's RTP: on the main thread
    const opened = waitFor<[Session]>(tb.bridge.answerer, 'session');
    const camera = await startCamera(tb, transport, { codec: 'VP8', audio: undefined });
    const [session] = await opened;
    await waitFor(session, 'keyframe'); // the stream's first keyframe: the camera is streaming

    // The clip has a keyframe every 30 frames; a requested one must come on the next frame instead. The bridge may
    // ask by itself too (it does when a track starts), so each request is recorded with the counters at that moment.
    const requests: { frames: number; keyframes: number }[] = [];
    const requestKeyframe = camera.video.requestKeyframe.bind(camera.video);
    camera.video.requestKeyframe = () => {
      requests.push({ frames: camera.video.framesSent, keyframes: camera.video.keyframesSent });
      requestKeyframe();
    };
    const answered = waitFor(session, 'keyframe', () => {
      const first = requests[0];
      return first !== undefined && camera.video.keyframesSent > first.keyframes;
    });
    session.requestKeyframe(); // RTCP PLI, RFC 4585 §6.3.1
    await answered;

    expect(camera.keyframeRequests).toBeGreaterThanOrEqual(requests.length);
    expect(camera.summary().keyframeRequests).toBe(camera.keyframeRequests);
    // The keyframe was the first frame after the request (one more may be on its way by the time it arrived).
    expect(camera.video.framesSent - (requests[0]?.frames ?? 0)).toBeLessThanOrEqual(2);
  });
});
