/**
 * A camera without a sensor: the device SDK (DeviceClient + SessionKeeper) on a werift peer, streaming a looped
 * clip (VP8 or H264) and a G.711 tone while a session is connected, and answering PLI/FIR with a keyframe.
 * What `tali camera` runs, and what the end-to-end tests drive.
 */
import type { Logger } from 'pino';
import { VERSION } from '../../src/version.ts';
import type { BackoffOptions } from '../../src/client/backoff.ts';
import type { SessionInfo } from '../sdk/camera-session.ts';
import { DeviceClient } from '../sdk/device-client.ts';
import type { MqttConnector } from '../../src/client/mqtt-link.ts';
import { SessionKeeper } from '../sdk/session-keeper.ts';
import { WeriftPeer } from '../sdk/werift-peer.ts';
import { ToneSource } from './media/audio-source.ts';
import type { G711Law } from './media/g711.ts';
import { VideoSource, type VideoCodec } from './media/video-source.ts';

export interface SimulatedCameraOptions {
  deviceId: string;
  secret: string;
  connect: MqttConnector;
  root?: string | undefined;
  /** Default VP8. */
  codec?: VideoCodec | undefined;
  /** Default none. */
  audio?: G711Law | undefined;
  model?: string | undefined;
  icePortRange?: readonly [number, number] | undefined;
  /** For both MQTT reconnects and re-offers. */
  backoff?: Partial<BackoffOptions> | undefined;
  answerTimeoutMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
  /** The camera's clock (default Date.now); see DeviceClientOptions.clock. */
  clock?: (() => number) | undefined;
  logger?: Logger | undefined;
}

export interface CameraSummary {
  deviceId: string;
  codec: VideoCodec;
  audio: G711Law | 'none';
  sessionsOpened: number;
  sessionsConnected: number;
  /** The most recent session: its ID, timeline (ms since the offer) and why it closed, if it did. */
  lastSession: SessionInfo | undefined;
  packetsSent: number;
  bytesSent: number;
  framesSent: number;
  keyframesSent: number;
  audioPacketsSent: number;
  keyframeRequests: number;
  clockOffsetMs: number;
}

export class SimulatedCamera {
  readonly deviceId: string;
  readonly codec: VideoCodec;
  readonly client: DeviceClient;
  readonly keeper: SessionKeeper;
  readonly video: VideoSource;
  readonly audio: ToneSource | undefined;
  keyframeRequests = 0;
  /** The newest session's peer; media goes to it while its session is connected. */
  #peer: WeriftPeer | undefined;
  #stopped: Promise<void> | undefined;

  constructor(options: SimulatedCameraOptions) {
    this.deviceId = options.deviceId;
    this.codec = options.codec ?? 'VP8';
    this.video = new VideoSource({ codec: this.codec });
    this.audio = options.audio ? new ToneSource({ codec: options.audio, beep: { onMs: 200, periodMs: 1000 } }) : undefined;
    this.client = new DeviceClient({
      deviceId: options.deviceId,
      secret: options.secret,
      root: options.root,
      connect: options.connect,
      backoff: options.backoff,
      clock: options.clock,
      card: {
        model: options.model ?? 'tali simulated camera',
        firmware: VERSION,
        sdk: `tali-device-sdk/${VERSION}`,
        codecs: { video: [this.codec], audio: options.audio ? [options.audio] : [] },
      },
    });
    this.keeper = new SessionKeeper({
      client: this.client,
      backoff: options.backoff,
      answerTimeoutMs: options.answerTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs,
      createPeer: (iceServers, { iceTransportPolicy }) => {
        const peer = new WeriftPeer({ iceServers, iceTransportPolicy, video: this.codec, audio: options.audio, icePortRange: options.icePortRange });
        peer.onKeyframeRequest = () => {
          this.keyframeRequests++;
          this.video.requestKeyframe();
        };
        this.#peer = peer;
        return peer;
      },
    });
    this.keeper.on('session-connected', () => this.#startMedia());
    this.keeper.on('session-closed', () => this.#stopMedia());
    if (options.logger) logEvents(this, options.logger);
  }

  /** Connects and starts keeping a session; resolves at the first CONNACK (see DeviceClient.start). */
  async start(): Promise<void> {
    this.keeper.start();
    try {
      await this.client.start();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops media, says bye, publishes the offline card and disconnects; releases every socket and timer. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.#stopMedia();
      await this.keeper.stop();
      await this.client.stop();
      this.#peer = undefined;
    })();
    return this.#stopped;
  }

  summary(): CameraSummary {
    return {
      deviceId: this.deviceId,
      codec: this.codec,
      audio: this.audio?.codec ?? 'none',
      sessionsOpened: this.keeper.counters.opened,
      sessionsConnected: this.keeper.counters.connected,
      lastSession: this.keeper.lastSession,
      packetsSent: this.video.packetsSent,
      bytesSent: this.video.bytesSent + (this.audio?.bytesSent ?? 0),
      framesSent: this.video.framesSent,
      keyframesSent: this.video.keyframesSent,
      audioPacketsSent: this.audio?.packetsSent ?? 0,
      keyframeRequests: this.keyframeRequests,
      clockOffsetMs: this.client.clockOffsetMs,
    };
  }

  #startMedia(): void {
    const peer = this.#peer;
    if (peer === undefined || this.#stopped) return;
    // VideoSource.start() begins with a keyframe: what a receiver joining a stream needs first.
    if (!this.video.running) this.video.start((packet) => peer.sendVideoRtp(packet));
    if (this.audio && !this.audio.running) this.audio.start((packet) => peer.sendAudioRtp(packet));
  }

  #stopMedia(): void {
    this.video.stop();
    this.audio?.stop();
  }
}

function logEvents(camera: SimulatedCamera, logger: Logger): void {
  const log = logger.child({ deviceId: camera.deviceId });
  const { client, keeper } = camera;
  client.on('connected', ({ reconnect }) => log.info({ reconnect }, 'connected to the broker'));
  client.on('disconnected', (err) => (err ? log.warn({ err: err.message }, 'disconnected') : log.info('disconnected')));
  client.on('reconnecting', (r) => log.info(r, 'reconnecting'));
  client.on('bridge', (card) => log.info({ bridgeId: card.bridgeId, state: card.state, version: card.version }, 'bridge card'));
  client.on('error', (m) => log.warn({ code: m.code, sessionId: m.sessionId, message: m.message }, 'bridge error'));
  client.on('protocolError', (err, topic) => log.warn({ topic, code: err.code, err: err.message }, 'undecodable message'));
  keeper.on('session-open', (s) => log.info({ sessionId: s.sessionId, bridgeId: s.bridgeId }, 'offering'));
  keeper.on('session-connected', (s) => log.info({ sessionId: s.sessionId, timeline: s.timeline }, 'session connected'));
  keeper.on('session-closed', (s) => log.info({ sessionId: s.sessionId, reason: s.closeReason, timeline: s.timeline }, 'session closed'));
  keeper.on('retry-scheduled', (r) => log.info(r, 'offering again later'));
}
