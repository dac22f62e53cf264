/**
 * A viewer at the wire level for relay tests: an MQTT client with a viewer identity and a real werift peer that
 * receives. (The dashboard and the Node viewer client use the viewer SDK instead.)
 */
import type { MqttClient } from 'mqtt';
import { onTestFinished } from 'vitest';
import { RTCPeerConnection, type RtpPacket } from 'werift';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { PROTOCOL_VERSION, Topics } from '../../src/protocol/topics.ts';
import { codecParameters, VIDEO_CODECS, AUDIO_CODECS } from '../../src/webrtc/codecs.ts';
import type { TestBridge, Transport } from './bridge.ts';
import { Inbox } from './wait.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';

export interface RawViewer {
  id: string;
  /** Its connection's client ID: the level of its topics. */
  clientId: string;
  client: MqttClient;
  /** Its connection's up topic. */
  up: string;
  down: Inbox;
  /** Publishes a session message on the viewer's up topic. */
  send(type: string, sessionId: string, seq: number, fields?: Record<string, unknown>): Promise<void>;
  /** A recvonly werift peer and its offer; received RTP is collected per kind. */
  createPeer(): Promise<ViewerPeer>;
}

export interface ViewerPeer {
  pc: RTCPeerConnection;
  sdp: string;
  received: { video: RtpPacket[]; audio: RtpPacket[] };
  /** Resolves when at least `count` packets of `kind` have arrived. */
  packets(kind: 'video' | 'audio', count: number): Promise<RtpPacket[]>;
  /** Sends RTCP PLI for the received video (asks the bridge, and through it the camera, for a keyframe). */
  requestKeyframe(): void;
}

export interface RawViewerOptions {
  /** A password or token; default: the user is (re-)registered and its new secret used. */
  password?: string;
  /** Default: the user name, ":" and a random suffix. */
  clientId?: string;
  /** Set `leave` as the will (default true). */
  will?: boolean;
}

export async function connectRawViewer(tb: TestBridge, transport: Transport, id = 'alice', options: RawViewerOptions = {}): Promise<RawViewer> {
  const secret = options.password ?? (await tb.bridge.credentials.add(id, 'viewer', { replace: true }));
  const topics = new Topics(tb.bridge.config.root);
  const clientId = options.clientId ?? `${id}:${Math.random().toString(36).slice(2, 8)}`;
  const will = {
    topic: topics.viewer(id, clientId, 'up'),
    payload: Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, type: 'leave', ts: Date.now() })),
    qos: 1 as const,
    retain: false,
  };
  const client = await connectMqtt({ target: tb.urlFor(transport), clientId, username: id, password: secret, will: options.will === false ? undefined : will });
  onTestFinished(() => client.endAsync(true));
  const down = new Inbox(client);
  await client.subscribeAsync(topics.viewer(id, clientId, 'down'), { qos: 1 });
  return {
    id,
    clientId,
    client,
    down,
    up: topics.viewer(id, clientId, 'up'),
    send: async (type, sessionId, seq, fields = {}) => {
      const message = { v: PROTOCOL_VERSION, type, sessionId, seq, ts: Date.now(), ...fields };
      await client.publishAsync(topics.viewer(id, clientId, 'up'), JSON.stringify(message), { qos: 1 });
    },
    createPeer: async () => {
      const pc = new RTCPeerConnection({ codecs: { video: VIDEO_CODECS.map(codecParameters), audio: AUDIO_CODECS.map(codecParameters) } });
      onTestFinished(() => pc.close());
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const received: ViewerPeer['received'] = { video: [], audio: [] };
      const waiters = new Set<() => void>();
      let videoSsrc: number | undefined;
      pc.onTrack.subscribe((track) => {
        track.onReceiveRtp.subscribe((packet) => {
          if (track.kind === 'video') videoSsrc = packet.header.ssrc;
          received[track.kind as 'video' | 'audio'].push(packet);
          for (const wake of waiters) wake();
        });
      });
      const offer = await pc.createOffer();
      withoutDefaultStun(pc);
      await pc.setLocalDescription(offer);
      const video = pc.getTransceivers().find((t) => t.kind === 'video');
      return {
        pc,
        sdp: pc.localDescription?.sdp ?? '',
        received,
        packets: (kind, count) =>
          new Promise((resolve) => {
            const wake = () => {
              if (received[kind].length >= count) {
                waiters.delete(wake);
                resolve(received[kind]);
              }
            };
            waiters.add(wake);
            wake();
          }),
        requestKeyframe: () => {
 if (video && videoSsrc !== undefined) void video.receiver.sendRtcpPLI(videoSsrc);
        },
      };
    },
  };
}
