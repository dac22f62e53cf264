/**
 * A camera at the wire level that streams a real clip: raw MQTT signaling (test/helpers/raw-device.ts) plus a
 * werift sender fed by the simulated camera's VideoSource, answering keyframe requests.
 */
import { EventEmitter } from 'node:events';
import { RTCPeerConnection } from 'werift';
import { onTestFinished } from 'vitest';
import { VideoSource } from '../../devices/camera/media/video-source.ts';
import type { Session } from '../../src/answerer/session.ts';
import { codecParameters } from '../../src/webrtc/codecs.ts';
import type { TestBridge } from './bridge.ts';
import type { RawDevice } from './raw-device.ts';
import { explained } from './media-state.ts';
import { waitFor, withTimeout } from './wait.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';

export interface StreamingCamera {
  pc: RTCPeerConnection;
  source: VideoSource;
  session: Session;
  keyframeRequests: number;
  /** Emits 'keyframeRequest' for each PLI the camera receives. */
  events: EventEmitter;
  /** Starts sending again after `source.stop()`, from a keyframe. */
  resume(): void;
  stop(): Promise<void>;
}

/** Offers as `cam`, applies the answer, and streams `codec` once connected. */
export async function streamCamera(tb: TestBridge, cam: RawDevice, sessionId: string, codec: 'VP8' | 'H264' = 'VP8'): Promise<StreamingCamera> {
  const pc = new RTCPeerConnection({ codecs: { video: [codecParameters(codec)] } });
  const transceiver = pc.addTransceiver('video', { direction: 'sendonly' });
  const source = new VideoSource({ codec });
  const events = new EventEmitter();
  const camera: Partial<StreamingCamera> & { keyframeRequests: number } = { pc, source, keyframeRequests: 0, events };
  transceiver.sender.onPictureLossIndication.subscribe(() => {
    camera.keyframeRequests++;
    source.requestKeyframe();
    events.emit('keyframeRequest');
  });
  const stop = async () => {
    source.stop();
    await pc.close();
  };
  onTestFinished(stop);
  const offer = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(offer);
  const opened = waitFor<[Session]>(tb.bridge.answerer, 'session', (s) => s.sessionId === sessionId);
  await cam.send(cam.message('offer', sessionId, 1, { sdp: pc.localDescription?.sdp }));
  const [session] = await opened;
  const answer = await cam.down.next((m) => m.type === 'answer' && m.sessionId === sessionId, 5000, 'answer');
  const connected = new Promise<void>((resolve) => pc.connectionStateChange.subscribe((s) => s === 'connected' && resolve()));
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
  // Bounded, and saying where it stopped (a prestart test ran into its 30 s test timeout here once, under load).
  await explained(tb, withTimeout(connected, 15_000, `camera session ${sessionId} connected`), () => ({ camera: pc.connectionState }));
  const resume = () => source.start((packet) => void transceiver.sender.sendRtp(packet));
  resume();
  return Object.assign(camera, { session, stop, resume }) as StreamingCamera;
}
