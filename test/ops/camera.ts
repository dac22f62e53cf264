/**
 * A camera that streams real media, signaled by hand: a werift sender fed by the simulated camera's media sources
 * (a looped VP8 or H264 clip, a G.711 tone), answering PLI with a keyframe (unless told to ignore it, as some
 * firmware does). Works against an in-process bridge (TestBridge) or a bridge in another process (URL, device ID and
 * secret). `vp8Clip` writes the IVF clips that such a camera sends.
 */
import { writeFile } from 'node:fs/promises';
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
  /** The video clip to loop (default: the simulated camera's). */
  clip?: string;
  /** Counts PLIs but sends no keyframe for them (firmware with a fixed GOP, or a hostile camera). */
  ignoreKeyframeRequests?: boolean;
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
  const video = new VideoSource({ codec, ...(options.clip !== undefined && { clip: options.clip }) });
  const audio = options.audio ? new ToneSource({ codec: options.audio, beep: { onMs: 200, periodMs: 1000 } }) : undefined;
  let plis = 0;
  videoSender.onPictureLossIndication.subscribe(() => {
    plis++;
    if (!options.ignoreKeyframeRequests) video.requestKeyframe();
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

/** Writes a VP8 IVF clip (the simulated camera's format, see devices/camera/media/containers.ts) from frames. */
export async function writeVp8Clip(path: string, frames: Uint8Array[], size = { width: 320, height: 240, fps: 30 }): Promise<void> {
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4);
  header.writeUInt16LE(32, 6);
  header.write('VP80', 8, 'latin1');
  header.writeUInt16LE(size.width, 12);
  header.writeUInt16LE(size.height, 14);
  header.writeUInt32LE(size.fps, 16);
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(frames.length, 24);
  const parts = [header];
  frames.forEach((frame, i) => {
    const head = Buffer.alloc(12);
    head.writeUInt32LE(frame.length, 0);
    head.writeBigUInt64LE(BigInt(i), 4);
    parts.push(head, Buffer.from(frame));
  });
  await writeFile(path, Buffer.concat(parts));
}
