/**
 * A camera's signaling link to a tali bridge over MQTT (protocol v1). Owns the connection: status card and last
 * will, subscriptions, reconnects with backoff, and the typed messages in both directions. Knows nothing of WebRTC
 * (see SessionKeeper). Browser-safe: no node:* imports, the MQTT client comes from the `connect` factory.
 */
import type { MqttClient } from 'mqtt';
import {
  assertValidId, decode, DEFAULT_ROOT, DuplicateFilter, encode, ProtocolError, PROTOCOL_VERSION, SequenceCounter, Topics,
  type Answer, type BridgeStatus, type Bye, type Candidate, type ErrorMessage, type MessageOnChannel, type Offer,
  type Start, type Status,
} from '../../src/protocol/index.ts';
import { backoffDelay, backoffOptions, type BackoffOptions } from '../../src/client/backoff.ts';
import { BridgeClock } from '../../src/client/bridge-clock.ts';
import { TypedEmitter } from '../../src/client/emitter.ts';
import { connackCode, ConnectRefusedError, isFatalConnack, publish, subscribe, withTimeout, type MqttConnector } from '../../src/client/mqtt-link.ts';

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
  protocolError: [error: ProtocolError, topic: string];
}

/** A connection lasting this long counts as healthy: the next loss starts the backoff from the beginning again. */
const STABLE_CONNECTION_MS = 10_000;

export class DeviceClient extends TypedEmitter<DeviceClientEvents> {
  readonly deviceId: string;
  readonly topics: Topics;
  readonly #options: DeviceClientOptions;
  readonly #backoff: BackoffOptions;
  readonly #clock: BridgeClock;
  readonly #outgoing = new SequenceCounter();
  readonly #seen = new DuplicateFilter();
  readonly #bridges = new Map<string, BridgeStatus>();
  #client: MqttClient | undefined;
  #lastError: Error | undefined;
  #connected = false;
  #everConnected = false;
  #connectedAt = 0;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #started: Promise<void> | undefined;
  #settleStart: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #stopped: Promise<void> | undefined;

  constructor(options: DeviceClientOptions) {
    super();
    assertValidId(options.deviceId, 'device ID');
    this.deviceId = options.deviceId;
    this.topics = new Topics(options.root ?? DEFAULT_ROOT);
    this.#options = options;
    this.#backoff = backoffOptions(options.backoff);
    this.#clock = new BridgeClock(options.clock);
  }

  get connected(): boolean {
    return this.#connected;
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
    return this.#bridges;
  }

  /** The newest card of an online bridge, if any. */
  get onlineBridge(): BridgeStatus | undefined {
    let newest: BridgeStatus | undefined;
    for (const card of this.#bridges.values()) {
      if (card.state === 'online' && (newest === undefined || card.ts > newest.ts)) newest = card;
    }
    return newest;
  }

  /**
   * Connects; resolves at the first CONNACK (after subscribing). Network failures are retried with backoff; a refused
   * CONNECT (bad secret, wrong client ID) rejects with ConnectRefusedError and stops. Idempotent.
   */
  start(): Promise<void> {
    if (this.#started) return this.#started;
    if (this.#stopped) return Promise.reject(new Error('DeviceClient was stopped; make a new one'));
    this.#started = new Promise<void>((resolve, reject) => {
      this.#settleStart = { resolve, reject };
    });
    this.#connect();
    return this.#started;
  }

  /** Publishes the offline card, disconnects cleanly (so the broker drops the will) and clears every timer. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  /** Sends one message of `sessionId`, numbered and stamped here; resolves at PUBACK. */
  async send(sessionId: string, body: UpBody): Promise<void> {
    const client = this.#client;
    if (!this.#connected || client === undefined) throw new Error('not connected to the broker');
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

  #connect(): void {
    this.#reconnectTimer = undefined;
    this.#lastError = undefined;
    const client = this.#options.connect({
      clientId: this.deviceId,
      username: this.deviceId,
      password: this.#options.secret,
      will: { topic: this.topics.device(this.deviceId, 'status'), payload: this.#card('offline'), qos: 1, retain: true },
      keepaliveS: this.#options.keepaliveS ?? 30,
      clean: true,
    });
    this.#client = client;
    // Every handler checks that its client is still the current one: a replaced client is forgotten, not unhooked
    // (mqtt.js keeps its own listeners on the same events).
    client.on('error', (err) => {
      if (client === this.#client) this.#lastError = err;
    });
    client.on('connect', () => void this.#onConnack(client));
    client.on('message', (topic, payload) => {
      if (client === this.#client) this.#onMessage(topic, payload);
    });
    client.on('close', () => this.#onClose(client));
  }

  async #onConnack(client: MqttClient): Promise<void> {
    if (client !== this.#client) return; // stopped or replaced while connecting
    try {
      // Card first: a viewer that sees the device online can rely on it having its subscriptions a moment later.
      void publish(client, this.topics.device(this.deviceId, 'status'), this.#card('online'), true).catch(() => {});
      await subscribe(client, [this.topics.device(this.deviceId, 'down'), this.topics.allBridges()]);
    } catch (err) {
      if (client === this.#client) this.#lastError = err as Error;
      client.end(true); // → 'close' → reconnect with backoff
      return;
    }
    if (client !== this.#client) return;
    this.#connected = true;
    this.#connectedAt = Date.now();
    const reconnect = this.#everConnected;
    this.#everConnected = true;
    this.#settleStart?.resolve();
    this.#settleStart = undefined;
    this.emit('connected', { reconnect });
  }

  #onClose(client: MqttClient): void {
    if (client !== this.#client) return;
    const error = this.#lastError;
    this.#client = undefined;
    client.end(true);
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#bridges.clear();
    if (this.#stopped) return;

    const code = error ? connackCode(error) : undefined;
    if (isFatalConnack(code) && !this.#everConnected) {
      // Wrong ID or secret at start-up: a configuration error, so say so once instead of retrying forever.
      const refused = new ConnectRefusedError(`device "${this.deviceId}"`, code, 'device ID');
      this.#settleStart?.reject(refused);
      this.#settleStart = undefined;
      void this.stop();
      this.emit('disconnected', refused);
      return;
    }
    if (wasConnected && Date.now() - this.#connectedAt >= STABLE_CONNECTION_MS) this.#attempt = 0;
    const delayMs = backoffDelay(this.#attempt, this.#backoff);
    const attempt = ++this.#attempt;
    this.emit('disconnected', error ?? (wasConnected ? new Error('connection lost') : new Error('connection failed')));
    if (this.#stopped) return; // a 'disconnected' listener stopped us
    this.#reconnectTimer = setTimeout(() => this.#connect(), delayMs);
    this.emit('reconnecting', { attempt, delayMs });
  }

  #onMessage(topic: string, payload: Uint8Array): void {
    if (topic === this.topics.device(this.deviceId, 'down')) {
      this.#onDown(topic, payload);
      return;
    }
    const parsed = this.topics.parse(topic);
    if (parsed?.kind !== 'bridge') return;
    if (payload.byteLength === 0) {
      this.#bridges.delete(parsed.id); // a cleared retained card (MQTT-3.3.1-10)
      return;
    }
    let card: BridgeStatus;
    try {
      card = decode('bridge', payload);
    } catch (err) {
      this.#protocolError(err, topic);
      return;
    }
    this.#bridges.set(parsed.id, card);
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
      case 'error':
        this.#clock.learn(message); // a TALI_ERR_STALE: from now on stamp messages on the bridge's clock
        return this.emit('error', message);
    }
  }

  #protocolError(err: unknown, topic: string): void {
    if (err instanceof ProtocolError) this.emit('protocolError', err, topic);
    else throw err;
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#settleStart?.reject(new Error('DeviceClient stopped before it connected'));
    this.#settleStart = undefined;
    const client = this.#client;
    const wasConnected = this.#connected;
    this.#client = undefined;
    this.#connected = false;
    this.#bridges.clear();
    if (client === undefined) return;
    const timeoutMs = this.#options.stopTimeoutMs ?? 2000;
    try {
      if (wasConnected) {
        const card = publish(client, this.topics.device(this.deviceId, 'status'), this.#card('offline'), true);
        await withTimeout(card, timeoutMs, 'publishing the offline card');
      }
      // A DISCONNECT packet tells the broker to discard the will (MQTT-3.14.4-3): the card above already said it.
      await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), timeoutMs, 'disconnecting');
    } catch {
      client.end(true);
    }
    if (wasConnected) this.emit('disconnected', undefined);
  }
}
