/**
 * The headless answerer: subscribes to every device's `up` and `status` topics through an MQTT client (in-process to
 * the embedded broker, or by URL to any broker), validates each payload at the edge, and dispatches it to one
 * handler per message kind. It publishes the retained bridge card that tells devices the ICE servers and limits.
 */
import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { decode, encode, encodeForDevice } from '../protocol/codec.ts';
import { ProtocolError, toErrorMessage } from '../protocol/errors.ts';
import type { BridgeStatus, Message, SessionMetrics } from '../protocol/messages.ts';
import { DuplicateFilter, isFresh } from '../protocol/sequence.ts';
import { PROTOCOL_VERSION, type Topics } from '../protocol/topics.ts';
import type { IcePlan } from '../turn/ice-plan.ts';
import type { PeerOptions } from '../webrtc/peer.ts';
import { weriftPatched } from '../webrtc/werift-patch.ts';
import type { AnswererContext } from './context.ts';
import { DeviceIce } from './device-ice.ts';
import { handleBye } from './handlers/bye.ts';
import { handleCandidate } from './handlers/candidate.ts';
import { handleDeviceError } from './handlers/error.ts';
import { handleOffer } from './handlers/offer.ts';
import { handleStatus } from './handlers/status.ts';
import type { MediaPlane } from '../media/plane.ts';
import type { CameraSession } from './session.ts';

export interface AnswererOptions {
  /** Connects the answerer's MQTT client with the given last will (the bridge card, offline). */
  connect: (will: { topic: string; payload: Buffer; qos: 1; retain: true }) => Promise<MqttClient>;
  topics: Topics;
  bridgeId: string;
  version: string;
  /** ICE servers of the card, of devices and of the bridge's own peers. */
  ice: IcePlan;
  udpPortRange?: readonly [number, number] | undefined;
  /** Local addresses and announced addresses for media (PeerOptions). */
  mediaAddresses?: PeerOptions['mediaAddresses'];
  announceAddresses?: PeerOptions['announceAddresses'];
  /** Bytes; larger device payloads get TALI_ERR_PAYLOAD_TOO_LARGE. */
  maxMessageBytes: number;
  /** Milliseconds either side of our clock that a message's `ts` may be; 0 disables the check. */
  maxAgeMs: number;
  connectTimeoutMs: number;
  mediaTimeoutMs: number;
  maxSessions: number;
  /** Cluster mode: the device is connected to this node (only that node sends it its ICE servers). */
  deviceHere?: ((deviceId: string) => boolean) | undefined;
  /** Where camera sessions run (this thread or media workers). */
  media: MediaPlane;
  logger: Logger;
}

export interface AnswererEvents {
  /** A camera session was created (it then reports its own state, media and close). */
  session: [CameraSession];
  /** A signaling message passed the edge (in) or was published (out): for metrics and the signaling log. */
  signal: [direction: 'in' | 'out', deviceId: string, type: string];
  /** A device message was refused with this code (an `error` went back to the device). */
  rejected: [deviceId: string, code: string];
}

export class Answerer extends EventEmitter<AnswererEvents> {
  readonly sessions = new Map<string, CameraSession>();
  readonly #options: AnswererOptions;
  readonly #log: Logger;
  readonly #duplicates = new Map<string, DuplicateFilter>();
  readonly #context: AnswererContext;
  readonly #deviceIce: DeviceIce;
  #client: MqttClient | undefined;
  #closed = false;

  constructor(options: AnswererOptions) {
    super();
    this.#options = options;
    this.#log = options.logger;
    const { ice } = options;
    this.#deviceIce = new DeviceIce({ plan: ice, send: (deviceId, message) => this.#sendToDevice(deviceId, message), here: options.deviceHere, log: this.#log });
    this.#context = {
      sessions: this.sessions,
      log: this.#log,
      peer: (deviceId): PeerOptions => ({
        ...ice.bridgePeer(deviceId),
        portRange: options.udpPortRange,
        mediaAddresses: options.mediaAddresses,
        announceAddresses: options.announceAddresses,
      }),
      deviceIce: this.#deviceIce,
      connectTimeoutMs: options.connectTimeoutMs,
      mediaTimeoutMs: options.mediaTimeoutMs,
      maxSessions: options.maxSessions,
      bridgeId: options.bridgeId,
      sendToDevice: (deviceId, payload) => this.#sendToDevice(deviceId, payload),
      reject: (deviceId, error) => this.#reject(deviceId, error),
      createSession: (sessionOptions) => options.media.openSession(sessionOptions),
      opened: (session) => this.emit('session', session),
    };
  }

  /**
   * Pays the media plane's first-use cost (werift's interface scan and certificate: ~95 ms of CPU, and up to ~0.5 s of
   * waiting on this machine; with media workers, starting them) before the first camera's offer does. start() waits
   * for it; the bridge begins it before its listeners open, so that the waiting overlaps the rest of start-up.
   */
  warmUp(): Promise<void> {
    return this.#options.media.warmUp();
  }

  async start(): Promise<void> {
    const { topics } = this.#options;
    try {
      encodeForDevice(this.#card('online'));
    } catch (err) {
      throw new Error(`the bridge card is too large for devices (${(err as Error).message}): list fewer or shorter iceServers`);
    }
    if (!weriftPatched()) {
      this.#log.warn('werift lacks the DTLS patch (docs/werift-patches.md): peers are not authenticated by their keys; reinstall tali with install scripts (or run `node scripts/patch-deps.js` in the tali package)');
    }
    await this.warmUp();
    const client = await this.#options.connect({
      topic: topics.bridge(this.#options.bridgeId),
      payload: Buffer.from(encode(this.#card('offline'))),
      qos: 1,
      retain: true,
    });
    this.#client = client;
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    const ownCard = topics.bridge(this.#options.bridgeId);
    await client.subscribeAsync([topics.allDevices('up'), topics.allDevices('status'), ownCard], { qos: 1 });
    this.#onlineTs = Date.now();
    await client.publishAsync(ownCard, encode(this.#card('online')), { qos: 1, retain: true });
    // After a reconnect (an external broker restarted, or the cluster backend dropped the in-process client), the
    // will may have marked the bridge offline: say online again, with the same ts, since the sessions live on
    // (a new ts tells devices the bridge restarted, and they would all offer again).
    client.on('connect', () => {
      if (this.#closed) return;
      this.#log.info('reconnected to the broker');
      this.#publish(ownCard, encode(this.#card('online')), true);
    });
  }

  /** Ends every session with bye "shutdown", marks the bridge offline and disconnects. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#deviceIce.close();
    await Promise.all([...this.sessions.values()].map((s) => s.close('shutdown')));
    const client = this.#client;
    if (client === undefined) return;
    const topic = this.#options.topics.bridge(this.#options.bridgeId);
    // Brokers (Aedes among them) may PUBACK before they hand a message on. Our own offline card coming back means
    // the broker has routed it, and the byes published before it, so disconnecting now loses nothing.
    const echoed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 1000);
      this.#onOwnCard = (state) => {
        if (state === 'offline') (clearTimeout(timer), resolve());
      };
    });
    // Bounded too: a broker that cannot route (a cluster whose Redis is away) would never acknowledge it.
    const published = client.publishAsync(topic, encode(this.#card('offline')), { qos: 1, retain: true }).catch(() => {});
    await echoed;
    await Promise.race([published, new Promise((resolve) => setTimeout(resolve, 100))]);
    await endWithin(client, 1000);
  }

  /** Publishes the online card again (same ts: devices do not take it for a restart), e.g. after Redis lost it. */
  announce(): void {
    if (this.#closed || this.#client === undefined) return;
    this.#publish(this.#options.topics.bridge(this.#options.bridgeId), encode(this.#card('online')), true);
  }

  /** Whether the answerer can take sessions: started, its MQTT client connected, not closing (for /readyz). */
  get ready(): boolean {
    return !this.#closed && this.#client?.connected === true;
  }

  /**
   * Publishes a session's timeline, retained, on the device's metrics topic (for dashboards and MQTT tools), through
   * the answerer's MQTT client like everything else it says.
   */
  publishMetrics(deviceId: string, message: SessionMetrics): void {
    this.#publish(this.#options.topics.device(deviceId, 'metrics'), encode(message), true);
  }

  #onOwnCard: (state: string) => void = () => {};
  /** ts of this start's online card. */
  #onlineTs = 0;

  #card(state: 'online' | 'offline'): BridgeStatus {
    const o = this.#options;
    const card: BridgeStatus = {
      v: PROTOCOL_VERSION,
      type: 'bridge-status',
      ts: state === 'online' && this.#onlineTs > 0 ? this.#onlineTs : Date.now(),
      state,
      bridgeId: o.bridgeId,
      version: o.version,
      iceServers: o.ice.cardServers,
      maxMessageBytes: o.maxMessageBytes,
    };
    if (o.ice.perDevice) card.iceServersPerDevice = true;
    if (o.udpPortRange) card.udpPortRange = [o.udpPortRange[0], o.udpPortRange[1]];
    return card;
  }

  #onMessage(topic: string, payload: Buffer): void {
    const parsed = this.#options.topics.parse(topic);
    if (parsed === undefined || payload.length === 0) return; // empty: a retained message being cleared
    try {
      if (parsed.kind === 'bridge') {
        if (parsed.id === this.#options.bridgeId) this.#onOwnCard(decode('bridge', payload).state);
      } else if (parsed.kind === 'device' && parsed.channel === 'up') {
        this.#onUp(parsed.id, payload);
      } else if (parsed.kind === 'device' && parsed.channel === 'status') {
        this.#onStatus(parsed.id, payload);
      }
    } catch (err) {
      if (err instanceof ProtocolError && parsed.kind === 'device') this.#reject(parsed.id, err);
      else this.#log.error({ err, topic }, 'message handling failed');
    }
  }

  #onUp(deviceId: string, payload: Buffer): void {
    const message = decode('up', payload, this.#options.maxMessageBytes);
    this.emit('signal', 'in', deviceId, message.type);
    if (message.sessionId !== undefined && message.seq !== undefined) {
      const ref = { sessionId: message.sessionId, seq: message.seq, type: message.type };
      if (!isFresh(message.ts, Date.now(), this.#options.maxAgeMs)) {
        throw new ProtocolError('TALI_ERR_STALE', `ts ${message.ts} is more than ${this.#options.maxAgeMs} ms from the bridge clock`, ref);
      }
      if (!this.#filter(deviceId).accept(message.sessionId, message.seq)) {
        this.#log.debug({ deviceId, ...ref }, 'duplicate dropped');
        return;
      }
    }
    switch (message.type) {
      case 'offer':
        void handleOffer(this.#context, deviceId, message);
        break;
      case 'candidate':
        handleCandidate(this.#context, deviceId, message);
        break;
      case 'bye':
        handleBye(this.#context, deviceId, message);
        break;
      case 'error':
        handleDeviceError(this.#context, deviceId, message);
        break;
    }
  }

  #onStatus(deviceId: string, payload: Buffer): void {
    const card = decode('status', payload, this.#options.maxMessageBytes);
    if (card.state === 'offline') this.#duplicates.delete(deviceId);
    handleStatus(this.#context, deviceId, card);
  }

  #filter(deviceId: string): DuplicateFilter {
    let filter = this.#duplicates.get(deviceId);
    if (filter === undefined) {
      filter = new DuplicateFilter({ sessions: 16 });
      this.#duplicates.set(deviceId, filter);
    }
    return filter;
  }

  #reject(deviceId: string, error: ProtocolError): void {
    this.#log.warn(
      { event: 'rejected', deviceId, code: error.code, sessionId: error.sessionId, seq: error.seq, type: error.type },
      error.message,
    );
    this.emit('rejected', deviceId, error.code);
    this.#sendToDevice(deviceId, toErrorMessage(error, Date.now()));
  }

  /** Encodes (throwing RangeError over the devices' size limit) and publishes on the device's down topic. */
  #sendToDevice(deviceId: string, message: Message): void {
    const payload = encodeForDevice(message);
    this.emit('signal', 'out', deviceId, message.type);
    this.#publish(this.#options.topics.device(deviceId, 'down'), payload);
  }

  #publish(topic: string, payload: string, retain = false): void {
    if (this.#client === undefined) return;
    this.#client.publish(topic, payload, { qos: 1, retain }, (err) => {
      if (err && !this.#closed) this.#log.warn({ topic, err: err.message }, 'publish failed');
    });
  }
}

/**
 * DISCONNECT after in-flight messages were acknowledged, or at once after `ms`: a broker that cannot route (a cluster
 * whose Redis is away) holds its acknowledgements, and shutdown must not wait for it.
 */
export async function endWithin(client: MqttClient, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const graceful = client.endAsync().catch(() => {});
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([graceful, late]);
  clearTimeout(timer);
  if (!client.disconnected) await client.endAsync(true).catch(() => {});
}
