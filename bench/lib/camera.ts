/**
 * The camera side of a negotiation, shared by every path the suite times: a send-only werift peer (the device SDK's
 * configuration: one video codec, max-bundle) that offers, applies an answer and streams a clip once connected.
 * How the offer and answer travel (in-process, MQTT, IPC) is up to the caller.
 */
import { RTCPeerConnection } from 'werift';
import { VideoSource, type VideoCodec } from '../../devices/camera/media/video-source.ts';
import { PROTOCOL_VERSION } from '../../src/protocol/topics.ts';
import { codecParameters } from '../../src/webrtc/codecs.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';

export interface CameraPeer {
  pc: RTCPeerConnection;
  /** The offer, with every host candidate (werift gathers before setLocalDescription resolves). */
  offerSdp: string;
  source: VideoSource;
  /** Resolves when the camera's side is ICE + DTLS connected. */
  connected: Promise<void>;
  applyAnswer(sdp: string): Promise<void>;
  /** Streams the clip (from a keyframe) until stop() or stopMedia(). */
  startMedia(): void;
  stopMedia(): void;
  /** Called on each keyframe request (RTCP PLI) after the source was told to send one. */
  onKeyframeRequest: (() => void) | undefined;
  stop(): Promise<void>;
}

export async function createCameraPeer(options: { codec?: VideoCodec; clip?: string; portRange?: [number, number] } = {}): Promise<CameraPeer> {
  const codec = options.codec ?? 'VP8';
  const pc = new RTCPeerConnection({
    codecs: { video: [codecParameters(codec)], audio: [] },
    iceServers: [],
    bundlePolicy: 'max-bundle',
    icePortRange: options.portRange,
  });
  const transceiver = pc.addTransceiver('video', { direction: 'sendonly' });
  const source = new VideoSource({ codec, ...(options.clip && { clip: options.clip }) });
  const peer: { onKeyframeRequest: (() => void) | undefined } = { onKeyframeRequest: undefined };
  transceiver.sender.onPictureLossIndication.subscribe(() => {
    source.requestKeyframe();
    peer.onKeyframeRequest?.();
  });
  const connected = new Promise<void>((resolve) => pc.connectionStateChange.subscribe((s) => s === 'connected' && resolve()));
  const offer = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(offer);
  return Object.assign(peer, {
    pc,
    offerSdp: pc.localDescription?.sdp ?? '',
    source,
    connected,
    applyAnswer: (sdp: string) => pc.setRemoteDescription({ type: 'answer', sdp }),
    startMedia: () => {
      if (!source.running) source.start((packet) => void transceiver.sender.sendRtp(packet).catch(() => {}));
    },
    stopMedia: () => source.stop(),
    stop: async () => {
      source.stop();
      await pc.close().catch(() => {});
    },
  });
}


const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function sessionId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(22)), (b) => ID_ALPHABET[b & 63]).join('');
}

/** A protocol v1 session message from the device (what the SDK would publish on its up topic). */
export function upMessage(type: 'offer' | 'candidate' | 'bye', sid: string, seq: number, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ v: PROTOCOL_VERSION, type, sessionId: sid, seq, ts: Date.now(), ...fields });
}
