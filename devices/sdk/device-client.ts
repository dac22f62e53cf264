/**
 * A camera's signaling link to a tali bridge over MQTT (protocol v1): status card and last will, subscriptions, and
 * the typed messages in both directions; ConnectionKeeper keeps the connection up (reconnects with backoff). Knows
 * nothing of WebRTC (see SessionKeeper). Browser-safe: no node:* imports, the MQTT client comes from the `connect`
 * factory.
 */
import {
  assertValidId, decode, DEFAULT_ROOT, DuplicateFilter, encode, ProtocolError, PROTOCOL_VERSION, SequenceCounter, Topics,
  type Answer, type BridgeStatus, type Bye, type Candidate, type ErrorMessage, type IceServers, type MessageOnChannel,
  type Offer, type Start, type Status,
} from '../../src/protocol/index.ts';
import type { BackoffOptions } from '../../src/client/backoff.ts';
import { BridgeClock } from '../../src/client/bridge-clock.ts';
import { ConnectionKeeper } from '../../src/client/connection-keeper.ts';
import { IceGrant } from '../../src/client/ice-grant.ts';
import { TypedEmitter } from '../../src/client/emitter.ts';
import { publish, subscribe, withTimeout, type MqttConnector } from '../../src/client/mqtt-link.ts';

export type DeviceCard = Pick<Status, 'model' | 'firmware' | 'sdk' | 'codecs'>;

type Envelope = 'v' | 'sessionId' | 'seq' | 'ts';
type BodyOf<M> = M extends unknown ? Omit<M, Envelope> : never;
/** What a device sends inside a session; DeviceClient adds v, sessionId, seq and ts. */
export type UpBody = BodyOf<Offer | Candidate | Bye>;

export interface DeviceClientOptions {
  deviceId: string;
  secret: string;
  /** Topic root (default "tali"). */
  root?: string | undefined;
  card?: DeviceCard | undefined;
  connect: MqttConnector;
  backoff?: Partial<BackoffOptions> | undefined;
  /** MQTT keepalive in seconds (default 30). */
  keepaliveS?: number | undefined;
  /** How long stop() waits for the offline card's PUBACK and the DISCONNECT, in ms (default 2000). */
  stopTimeoutMs?: number | undefined;
  /** The device's own clock (default Date.now). Tests set it wrong on purpose to exercise TALI_ERR_STALE. */
  clock?: (() => number) | undefined;
}

export interface DeviceClientEvents {
  connected: [{ reconnect: boolean }];
  disconnected: [error: Error | undefined];
  reconnecting: [{ attempt: number; delayMs: number }];
  bridge: [BridgeStatus];
  answer: [Answer];
  candidate: [Candidate];
  bye: [Bye];
  error: [ErrorMessage];
  start: [Start];
  /** The bridge sent this device its own ICE servers (TURN credentials), held in `iceGrant` for the next sessions. */
  'ice-servers': [IceServers];
  protocolError: [error: ProtocolError, topic: string];
}

export class DeviceClient extends TypedEmitter<DeviceClientEvents> {
  readonly deviceId: string;
  readonly topics: Topics;
  /** This device's own ICE servers from the bridge (protocol §5.10), while they last. */
  readonly iceGrant = new IceGrant();
  readonly #options: DeviceClientOptions;
  readonly #clock: BridgeClock;
  readonly #outgoing = new SequenceCounter();
  readonly #seen = new DuplicateFilter();
  readonly #keeper: ConnectionKeeper<string>;

  constructor(options: DeviceClientOptions) {
    super();
    assertValidId(options.deviceId, 'device ID');
    this.deviceId = options.deviceId;
    this.topics = new Topics(options.root ?? DEFAULT_ROOT);
    this.#options = options;
    this.#clock = new BridgeClock(options.clock);
    const status = this.topics.device(this.deviceId, 'status');
    this.#keeper = new ConnectionKeeper(options, {
      name: 'DeviceClient',
      who: `device "${this.deviceId}"`,
      idName: 'device ID',
      login: () => options.secret,
      identity: (secret) => ({
        clientId: this.deviceId,
        username: this.deviceId,
        password: secret,
        will: { topic: status, payload: this.#card('offline'), qos: 1, retain: true },
      }),
      prepare: async (client) => {
        // Protocol §3: SUBSCRIBE (and its SUBACK) before the online card, so that a `start` the bridge sends on
        // seeing the card cannot arrive before the subscription exists and be lost.
        await subscribe(client, [this.topics.device(this.deviceId, 'down'), this.topics.allBridges()]);
        void publish(client, status, this.#card('online'), true).catch(() => {});
      },
      message: (topic, payload) => this.#onMessage(topic, payload),
      connected: (reconnect) => this.emit('connected', { reconnect }),
      disconnected: (error) => this.emit('disconnected', error),
      reconnecting: (info) => this.emit('reconnecting', info),
      farewell: (client, timeoutMs) => withTimeout(publish(client, status, this.#card('offline'), true), timeoutMs, 'publishing the offline card'),
    });
  }

  get connected(): boolean {
    return this.#keeper.connected;
  }

  /** Milliseconds added to the device clock, learnt from the bridge's TALI_ERR_STALE. */
  get clockOffsetMs(): number {
    return this.#clock.offsetMs;
  }

  /** The device clock corrected to the bridge's: what goes into `ts`. */
  now(): number {
    return this.#clock.now();
  }

  /** Bridge cards seen since the last CONNACK (retained, so each reconnect re-delivers them), by bridge ID. */
  get bridges(): ReadonlyMap<string, BridgeStatus> {
    return this.#keeper.bridges;
  }

  /** The newest card of an online bridge, if any. */
  get onlineBridge(): BridgeStatus | undefined {
    return this.#keeper.onlineBridge;
  }

  /**
   * Connects; resolves at the first CONNACK (after subscribing). Network failures are retried with backoff; a refused
   * CONNECT (bad secret, wrong client ID) rejects with ConnectRefusedError and stops. Idempotent.
   */
  start(): Promise<void> {
    return this.#keeper.start();
  }

  /** Publishes the offline card, disconnects cleanly (so the broker drops the will) and clears every timer. Idempotent. */
  stop(): Promise<void> {
    return this.#keeper.stop();
  }

  /** Sends one message of `sessionId`, numbered and stamped here; resolves at PUBACK. */
  async send(sessionId: string, body: UpBody): Promise<void> {
    const client = this.#keeper.client;
    if (!this.#keeper.connected || client === undefined) throw new Error('not connected to the broker');
    const message = { v: PROTOCOL_VERSION, ...body, sessionId, seq: this.#outgoing.next(sessionId), ts: this.now() };
    const payload = encode(message as Offer | Candidate | Bye);
    // The bridge's own check, run here first (with the limit from its card): a message it would refuse throws a
    // ProtocolError here instead of coming back as an error message.
    decode('up', payload, this.onlineBridge?.maxMessageBytes);
    await publish(client, this.topics.device(this.deviceId, 'up'), payload);
  }

  /** Drops a finished session's counters. */
  forgetSession(sessionId: string): void {
    this.#outgoing.forget(sessionId);
    this.#seen.forget(sessionId);
  }

  #card(state: 'online' | 'offline'): string {
    return encode({ v: PROTOCOL_VERSION, type: 'status', ts: this.now(), state, ...this.#options.card });
  }

  #onMessage(topic: string, payload: Uint8Array): void {
    if (topic === this.topics.device(this.deviceId, 'down')) {
      this.#onDown(topic, payload);
      return;
    }
    const parsed = this.topics.parse(topic);
    if (parsed?.kind !== 'bridge') return;
    if (payload.byteLength === 0) {
      this.#keeper.bridges.delete(parsed.id); // a cleared retained card (MQTT-3.3.1-10)
      return;
    }
    let card: BridgeStatus;
    try {
      card = decode('bridge', payload);
    } catch (err) {
      this.#protocolError(err, topic);
      return;
    }
    this.#keeper.bridges.set(parsed.id, card);
    this.emit('bridge', card);
  }

  #onDown(topic: string, payload: Uint8Array): void {
    let message: MessageOnChannel<'down'>;
    try {
      message = decode('down', payload);
    } catch (err) {
      this.#protocolError(err, topic);
      return;
    }
    // QoS 1 is at-least-once (MQTT-4.3.2): the same (sessionId, seq) may come twice.
    if ('sessionId' in message && message.sessionId !== undefined && message.seq !== undefined) {
      if (!this.#seen.accept(message.sessionId, message.seq)) return;
    }
    switch (message.type) {
      case 'answer':
        return this.emit('answer', message);
      case 'candidate':
        return this.emit('candidate', message);
      case 'bye':
        return this.emit('bye', message);
      case 'start':
        return this.emit('start', message);
      case 'ice-servers':
        this.iceGrant.update(message);
        return this.emit('ice-servers', message);
      case 'error':
        this.#clock.learn(message); // a TALI_ERR_STALE: from now on stamp messages on the bridge's clock
        return this.emit('error', message);
    }
  }

  #protocolError(err: unknown, topic: string): void {
    if (err instanceof ProtocolError) this.emit('protocolError', err, topic);
    else throw err;
  }
}
