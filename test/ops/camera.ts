/**
 * A camera that streams real media, signaled by hand: a werift sender fed by the simulated camera's media sources
 * (a looped VP8 or H264 clip, a G.711 tone), answering PLI with a keyframe. Works against an in-process bridge
 * (TestBridge) or a bridge in another process (URL, device ID and secret).
 */
import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { onTestFinished } from 'vitest';
import { RTCPeerConnection } from 'werift';
import { ToneSource } from '../../devices/camera/media/audio-source.ts';
import { VideoSource, type VideoCodec } from '../../devices/camera/media/video-source.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { PROTOCOL_VERSION, Topics } from '../../src/protocol/topics.ts';
import { codecParameters } from '../../src/webrtc/codecs.ts';
import { Inbox, withTimeout } from '../helpers/wait.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';

export interface StreamingCameraOptions {
  url: string;
  id: string;
  secret: string;
  root?: string;
  codec?: VideoCodec;
  audio?: 'PCMU' | 'PCMA' | undefined;
}

export interface StreamingCamera {
  id: string;
  sessionId: string;
  client: MqttClient;
  /** Everything the bridge sent on the device's down topic. */
  down: Inbox;
  pc: RTCPeerConnection;
  video: VideoSource;
  audio: ToneSource | undefined;
  /** PLIs the camera received. */
  keyframeRequests: () => number;
  stop(): Promise<void>;
}

/** Connects, offers, applies the answer and starts streaming once DTLS is up; resolves when media flows. */
export async function startStreamingCamera(options: StreamingCameraOptions): Promise<StreamingCamera> {
  const topics = new Topics(options.root ?? 'tali');
  const client = await connectMqtt({ target: options.url, clientId: options.id, username: options.id, password: options.secret });
  const down = new Inbox(client);
  await client.subscribeAsync(topics.device(options.id, 'down'), { qos: 1 });
  const codec = options.codec ?? 'VP8';
  const pc = new RTCPeerConnection({
    codecs: { video: [codecParameters(codec)], audio: options.audio ? [codecParameters(options.audio)] : [] },
  });
  const videoSender = pc.addTransceiver('video', { direction: 'sendonly' }).sender;
  const audioSender = options.audio ? pc.addTransceiver('audio', { direction: 'sendonly' }).sender : undefined;
  const video = new VideoSource({ codec });
  const audio = options.audio ? new ToneSource({ codec: options.audio, beep: { onMs: 200, periodMs: 1000 } }) : undefined;
  let plis = 0;
  videoSender.onPictureLossIndication.subscribe(() => {
    plis++;
    video.requestKeyframe();
  });
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      video.stop();
      audio?.stop();
      await pc.close().catch(() => {});
      await client.endAsync(true).catch(() => {});
    })());
  onTestFinished(() => stop());

  const offer = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(offer);
  const sessionId = randomBytes(12).toString('base64url');
  const connected = new Promise<void>((resolve) =>
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected') resolve();
    }),
  );
  await client.publishAsync(
    topics.device(options.id, 'up'),
    JSON.stringify({ v: PROTOCOL_VERSION, type: 'offer', sessionId, seq: 1, ts: Date.now(), sdp: pc.localDescription?.sdp }),
    { qos: 1 },
  );
  const answer = await down.next((m) => m.type === 'answer' && m.sessionId === sessionId, 10_000, 'answer');
  await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
  await withTimeout(connected, 10_000, 'camera connected');
  video.start((packet) => void videoSender.sendRtp(packet).catch(() => {}));
  audio?.start((packet) => void audioSender?.sendRtp(packet).catch(() => {}));
  return { id: options.id, sessionId, client, down, pc, video, audio, keyframeRequests: () => plis, stop };
}
