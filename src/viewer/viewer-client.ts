/**
 * A viewer's (or an admin's) signaling link to a tali bridge over MQTT: connects with a user name and a password (or
 * a token provider), sets `leave` as its last will, follows the device cards and metrics, and watches cameras
 * (WatchSession per camera) over `{root}/v1/viewer/{user}/up` and `.../down`. Reconnects with backoff and watches
 * again after a reconnect. Browser-safe: no node:* imports; the MQTT client comes from the `connect` factory.
 */
import type { MqttClient } from 'mqtt';
import { backoffDelay, backoffOptions, type BackoffOptions } from '../client/backoff.ts';
import { BridgeClock } from '../client/bridge-clock.ts';
import { TypedEmitter } from '../client/emitter.ts';
import { connackCode, ConnectRefusedError, isFatalConnack, publish, subscribe, withTimeout, type MqttConnector } from '../client/mqtt-link.ts';
import {
  assertValidId, decode, DEFAULT_ROOT, DuplicateFilter, encode, ProtocolError, PROTOCOL_VERSION, SequenceCounter, Topics,
  type BridgeStatus, type Leave, type Message, type MessageOnChannel,
} from '../protocol/index.ts';
import { DeviceDirectory, type DeviceEntry } from './device-directory.ts';
import type { ViewerPeerFactory } from './viewer-peer.ts';
import { WatchSession, type ViewerUpBody, type WatchLink, type WatchOptions } from './watch-session.ts';

export interface ViewerClientOptions {
  /** The viewer's (or admin's) user name; it is also the `{viewerId}` of its topics. */
  user: string;
  /**
   * The password, or a function asked for a credential at every CONNECT. For short-lived tokens (`POST /api/token`)
   * return `{ secret, expiresAt }`: before it expires the client asks again and moves to a new connection without
   * dropping a watch (see #scheduleRefresh).
   */
  password: string | (() => Credential | Promise<Credential>);
  root?: string | undefined;
  connect: MqttConnector;
  /**
   * Cards to follow: every device (default), or these devices only (a viewer token scoped to some devices may not
   * subscribe to the wildcard).
   */
  devices?: readonly string[] | undefined;
  backoff?: Partial<BackoffOptions> | undefined;
  /** MQTT keepalive in seconds (default 30). */
  keepaliveS?: number | undefined;
  /** How long stop() waits for byes and the DISCONNECT, in ms (default 2000). */
  stopTimeoutMs?: number | undefined;
  clock?: (() => number) | undefined;
  /** Defaults for every watch. */
  watch?: WatchOptions | undefined;
}

/** A password, or a token with its expiry (ms since the epoch). */
export type Credential = string | { secret: string; expiresAt: number };

/** One message that went over MQTT, for signaling logs. */
export interface SignalRecord {
  /** Local time, ms since the epoch. */
  at: number;
  /** `out`: this client sent it; `in`: it received it. */
  direction: 'in' | 'out';
  topic: string;
  /** The camera it is about, when known (a viewer session's camera, or the device of a device topic). */
  deviceId: string | undefined;
  message: Message;
}

export interface ViewerClientEvents {
  connected: [{ reconnect: boolean }];
  disconnected: [error: Error | undefined];
  reconnecting: [{ attempt: number; delayMs: number }];
  bridge: [BridgeStatus];
  /** A device's card or metrics changed; undefined entry: the device is gone (its retained messages were cleared). */
  device: [deviceId: string, entry: DeviceEntry | undefined];
  signal: [SignalRecord];
  protocolError: [error: ProtocolError, topic: string];
  /** Something worth showing that does not stop the client (e.g. the broker refused the device cards). */
  warning: [string];
  /** A token refresh moved the client to a new connection (the watches went on). */
  refreshed: [Credential];
}

const STABLE_CONNECTION_MS = 10_000;
const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function randomId(length: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(length)), (b) => ID_ALPHABET[b & 63]).join('');
}

export class ViewerClient extends TypedEmitter<ViewerClientEvents> {
  readonly user: string;
  readonly topics: Topics;
  readonly devices = new DeviceDirectory();
  readonly #options: ViewerClientOptions;
  readonly #backoff: BackoffOptions;
  readonly #clock: BridgeClock;
  readonly #outgoing = new SequenceCounter();
  readonly #seen = new DuplicateFilter();
  readonly #bridges = new Map<string, BridgeStatus>();
  readonly #watches = new Set<WatchSession>();
  /** Live protocol sessions → their watch (and so their camera). */
  readonly #routes = new Map<string, WatchSession>();
  /** Devices whose up/down topics this (admin) client follows for the signaling log. */
  readonly #followed = new Set<string>();
  readonly #link: WatchLink;
  #client: MqttClient | undefined;
  #lastError: Error | undefined;
  #connected = false;
  #everConnected = false;
  #connectedAt = 0;
  #attempt = 0;
  /**
   * The connection's ID (protocol section 16.3): in its will and in every watch made over it. New after a lost
   * connection (a late will of the old one must not end the new watches); kept across a token refresh.
   */
  #connection = '';
  /** The connection that replaces #client during a token refresh, until it is subscribed. */
  #next: MqttClient | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** The credential the live connection logged in with, while a refresh replaces it. */
  #refreshing: (Credential & object) | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #started: Promise<void> | undefined;
  #settleStart: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #stopped: Promise<void> | undefined;

  constructor(options: ViewerClientOptions) {
    super();
    assertValidId(options.user, 'user name');
    this.user = options.user;
    this.topics = new Topics(options.root ?? DEFAULT_ROOT);
    this.#options = options;
    this.#backoff = backoffOptions(options.backoff);
    this.#clock = new BridgeClock(options.clock);
    const client = this;
    this.#link = {
      get connected() {
        return client.#connected;
      },
      get onlineBridge() {
        return client.onlineBridge;
      },
      get connection() {
        return client.#connection;
      },
      newSessionId: () => `vw${randomId(20)}`,
      send: (sessionId, body) => this.#send(sessionId, body),
      forget: (sessionId) => {
        this.#routes.delete(sessionId);
        this.#outgoing.forget(sessionId);
        this.#seen.forget(sessionId);
      },
      route: (sessionId, watch) => void this.#routes.set(sessionId, watch),
    };
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** The client clock corrected to the bridge's (learnt from TALI_ERR_STALE): what goes into `ts`. */
  now(): number {
    return this.#clock.now();
  }

  get bridges(): ReadonlyMap<string, BridgeStatus> {
    return this.#bridges;
  }

  get onlineBridge(): BridgeStatus | undefined {
    let newest: BridgeStatus | undefined;
    for (const card of this.#bridges.values()) {
      if (card.state === 'online' && (newest === undefined || card.ts > newest.ts)) newest = card;
    }
    return newest;
  }

  /**
   * Connects; resolves at the first CONNACK (after subscribing). Network failures are retried with backoff; a refused
   * CONNECT (bad user name or password) rejects with ConnectRefusedError and stops. Idempotent.
   */
  start(): Promise<void> {
    if (this.#started) return this.#started;
    if (this.#stopped) return Promise.reject(new Error('ViewerClient was stopped; make a new one'));
    this.#started = new Promise<void>((resolve, reject) => {
      this.#settleStart = { resolve, reject };
    });
    void this.#connect();
    return this.#started;
  }

  /** Closes every watch (bye), disconnects cleanly (so the broker drops the will) and clears every timer. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  /** Watches a camera; the watch starts now if connected, else at the next CONNACK. */
  watch(deviceId: string, createPeer: ViewerPeerFactory, options: WatchOptions = {}): WatchSession {
    assertValidId(deviceId, 'device ID');
    if (this.#stopped) throw new Error('ViewerClient was stopped');
    const watch = new WatchSession(deviceId, this.#link, createPeer, { ...this.#options.watch, ...options });
    this.#watches.add(watch);
    watch.on('state', (state) => {
      if (state === 'closed') this.#watches.delete(watch);
    });
    watch.begin();
    return watch;
  }

  /**
   * Admins: also receive the device's own signaling (its `up` and `down` topics) as `signal` events. Viewers are
   * refused by the broker (SUBACK 0x80): the promise rejects, and only their own sessions' messages are logged.
   */
  async followSignaling(deviceId: string): Promise<void> {
    assertValidId(deviceId, 'device ID');
    this.#followed.add(deviceId);
    const client = this.#client;
    if (!this.#connected || client === undefined) return;
    try {
      await subscribe(client, [this.topics.device(deviceId, 'up'), this.topics.device(deviceId, 'down')]);
    } catch (err) {
      this.#followed.delete(deviceId);
      throw err;
    }
  }

  unfollowSignaling(deviceId: string): void {
    if (!this.#followed.delete(deviceId)) return;
    this.#client?.unsubscribe([this.topics.device(deviceId, 'up'), this.topics.device(deviceId, 'down')]);
  }

  async #send(sessionId: string, body: ViewerUpBody): Promise<void> {
    const client = this.#client;
    if (!this.#connected || client === undefined) throw new Error('not connected to the broker');
    const message = { v: PROTOCOL_VERSION, ...body, sessionId, seq: this.#outgoing.next(sessionId), ts: this.now() } as MessageOnChannel<'viewer-up'>;
    const payload = encode(message);
    // The bridge's own check, run here first: a message it would refuse throws here instead of coming back as an error.
    decode('viewer-up', payload, this.onlineBridge?.maxMessageBytes);
    const topic = this.topics.viewer(this.user, 'up');
    this.#signal('out', topic, message, this.#routes.get(sessionId)?.deviceId);
    await publish(client, topic, payload);
  }

  async #connect(): Promise<void> {
    this.#reconnectTimer = undefined;
    this.#lastError = undefined;
    let credential: Credential;
    try {
      credential = await this.#credential();
    } catch (err) {
      this.#scheduleReconnect(err as Error, false);
      return;
    }
    if (this.#stopped) return;
    // Names this connection in its will and in its watches: when it drops, the bridge ends only its sessions.
    this.#connection = randomId(16);
    const client = this.#open(credential);
    this.#client = client;
    client.on('connect', () => void this.#onConnack(client, credential));
  }

  /** A new mqtt.js client whose will names the current connection ID; every handler checks that it is still wanted. */
  #open(credential: Credential): MqttClient {
    const leave: Leave = { v: PROTOCOL_VERSION, type: 'leave', ts: this.now(), connection: this.#connection };
    const client = this.#options.connect({
      // Viewers may hold several connections (tabs); the client ID only has to be unique, and stable within one.
      clientId: `${this.user}-${randomId(8)}`,
      username: this.user,
      password: typeof credential === 'string' ? credential : credential.secret,
      will: { topic: this.topics.viewer(this.user, 'up'), payload: encode(leave), qos: 1, retain: false },
      keepaliveS: this.#options.keepaliveS ?? 30,
      clean: true,
    });
    client.on('error', (err) => {
      if (client === this.#client) this.#lastError = err;
    });
    // While a token refresh overlaps two connections both deliver: duplicates are dropped by (sessionId, seq).
    client.on('message', (topic, payload) => {
      if (client === this.#client || client === this.#next) this.#onMessage(topic, payload);
    });
    client.on('close', () => (client === this.#next ? this.#onSwitchFailed(client) : this.#onClose(client)));
    return client;
  }

  async #credential(): Promise<Credential> {
    const password = this.#options.password;
    return typeof password === 'string' ? password : await password();
  }

  /** Subscribes a fresh connection to what this client reads; false (and the connection ended) if that fails. */
  async #subscribeAll(client: MqttClient): Promise<boolean> {
    const t = this.topics;
    const cards = this.#options.devices ? this.#options.devices.flatMap((d) => [t.device(d, 'status'), t.device(d, 'metrics')]) : [t.allDevices('status'), t.allDevices('metrics')];
    try {
      await subscribe(client, [t.viewer(this.user, 'down'), t.allBridges()]);
      // Not fatal: a viewer token scoped to some devices may not read every card (give `devices` then).
      await subscribe(client, cards).catch((err: Error) => this.emit('warning', `device cards: ${err.message}`));
      const followed = [...this.#followed].flatMap((d) => [t.device(d, 'up'), t.device(d, 'down')]);
      if (followed.length > 0) await subscribe(client, followed).catch(() => this.#followed.clear());
      return true;
    } catch (err) {
      if (client === this.#client) this.#lastError = err as Error;
      client.end(true);
      return false;
    }
  }

  async #onConnack(client: MqttClient, credential: Credential): Promise<void> {
    if (client !== this.#client) return;
    if (!(await this.#subscribeAll(client)) || client !== this.#client) return;
    this.#connected = true;
    this.#connectedAt = Date.now();
    const reconnect = this.#everConnected;
    this.#everConnected = true;
    this.#settleStart?.resolve();
    this.#settleStart = undefined;
    this.#scheduleRefresh(credential);
    this.emit('connected', { reconnect });
    for (const watch of this.#watches) watch.begin();
  }

  /**
   * A token expires, and the broker then closes the connection that used it (MQTT 3.1.1 cannot re-authenticate).
   * So at 80 % of its life: a fresh credential, a second connection with it, then a clean DISCONNECT of the first.
   * The watches go on untouched: media never crosses MQTT, a clean DISCONNECT publishes no will, and the new
   * connection's will names the same connection ID, so it still ends these watches if the tab vanishes.
   */
  #scheduleRefresh(credential: Credential, inMs?: number): void {
    clearTimeout(this.#refreshTimer);
    if (typeof credential === 'string') return;
    const delayMs = inMs ?? Math.max(1000, (credential.expiresAt - Date.now()) * 0.8);
    this.#refreshTimer = setTimeout(() => void this.#switchConnection(credential), delayMs);
  }

  async #switchConnection(current: Credential & object): Promise<void> {
    if (this.#stopped || !this.#connected || this.#next) return;
    this.#refreshing = current;
    let credential: Credential;
    try {
      credential = await this.#credential();
    } catch (err) {
      this.emit('warning', `refreshing the login failed: ${(err as Error).message}`);
      return this.#scheduleRefresh(current, Math.min(5000, Math.max(0, (current.expiresAt - Date.now()) / 2)));
    }
    if (this.#stopped || !this.#connected) return;
    const next = this.#open(credential);
    this.#next = next;
    next.on('connect', () => void this.#onSwitchConnack(next, credential));
  }

  async #onSwitchConnack(next: MqttClient, credential: Credential): Promise<void> {
    if (next !== this.#next || !(await this.#subscribeAll(next)) || next !== this.#next) return;
    const previous = this.#client;
    this.#next = undefined;
    this.#client = next;
    this.#connectedAt = Date.now();
    this.#scheduleRefresh(credential);
    this.emit('refreshed', credential);
    // A DISCONNECT packet discards that connection's will (MQTT-3.14.4-3): the watches stay.
    previous?.end(false);
  }

  #onSwitchFailed(next: MqttClient): void {
    this.#next = undefined;
    next.end(true);
    if (this.#stopped || !this.#connected) return;
    this.emit('warning', 'refreshing the login failed: the new connection closed');
    if (this.#refreshing) this.#scheduleRefresh(this.#refreshing, 5000);
  }

  #onClose(client: MqttClient): void {
    if (client !== this.#client) return;
    clearTimeout(this.#refreshTimer);
    this.#next?.end(true);
    this.#next = undefined;
    const error = this.#lastError;
    this.#client = undefined;
    client.end(true);
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#bridges.clear();
    for (const watch of this.#watches) watch.connectionLost();
    if (this.#stopped) return;
    const code = error ? connackCode(error) : undefined;
    if (isFatalConnack(code) && !this.#everConnected) {
      const refused = new ConnectRefusedError(`viewer "${this.user}"`, code);
      this.#settleStart?.reject(refused);
      this.#settleStart = undefined;
      void this.stop();
      this.emit('disconnected', refused);
      return;
    }
    this.#scheduleReconnect(error ?? (wasConnected ? new Error('connection lost') : new Error('connection failed')), wasConnected);
  }

  #scheduleReconnect(error: Error, wasConnected: boolean): void {
    if (this.#stopped) return;
    if (wasConnected && Date.now() - this.#connectedAt >= STABLE_CONNECTION_MS) this.#attempt = 0;
    const delayMs = backoffDelay(this.#attempt, this.#backoff);
    const attempt = ++this.#attempt;
    this.emit('disconnected', error);
    if (this.#stopped) return;
    this.#reconnectTimer = setTimeout(() => void this.#connect(), delayMs);
    this.emit('reconnecting', { attempt, delayMs });
  }

  #onMessage(topic: string, payload: Uint8Array): void {
    const parsed = this.topics.parse(topic);
    if (parsed === undefined) return;
    try {
      if (parsed.kind === 'viewer') {
        if (parsed.id === this.user && parsed.channel === 'down') this.#onDown(topic, payload);
      } else if (parsed.kind === 'bridge') {
        if (payload.byteLength === 0) this.#bridges.delete(parsed.id);
        else this.#onBridge(decode('bridge', payload));
      } else if (parsed.channel === 'status' || parsed.channel === 'metrics') {
        const now = Date.now();
        const entry =
          parsed.channel === 'status'
            ? this.devices.setStatus(parsed.id, payload.byteLength === 0 ? undefined : decode('status', payload), now)
            : this.devices.setMetrics(parsed.id, payload.byteLength === 0 ? undefined : decode('metrics', payload), now);
        this.emit('device', parsed.id, entry);
      } else if (this.#followed.has(parsed.id)) {
        this.#signal('in', topic, decode(parsed.channel, payload), parsed.id);
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.emit('protocolError', err, topic);
      else throw err;
    }
  }

  #onDown(topic: string, payload: Uint8Array): void {
    const message = decode('viewer-down', payload);
    if ('seq' in message && message.sessionId !== undefined && message.seq !== undefined) {
      if (!this.#seen.accept(message.sessionId, message.seq)) return; // QoS 1 redelivery (MQTT-4.3.2)
    }
    if (message.type === 'error') this.#clock.learn(message); // TALI_ERR_STALE: stamp on the bridge's clock from now on
    const watch = message.sessionId === undefined ? undefined : this.#routes.get(message.sessionId);
    this.#signal('in', topic, message, watch?.deviceId);
    watch?.receive(message);
  }

  #onBridge(card: BridgeStatus): void {
    this.#bridges.set(card.bridgeId, card);
    this.emit('bridge', card);
    // A bridge node that went away (cluster mode: killed, its card published by its will) took its viewer sessions.
    if (card.state === 'offline') for (const watch of this.#watches) watch.bridgeOffline(card.bridgeId);
  }

  #signal(direction: 'in' | 'out', topic: string, message: Message, deviceId: string | undefined): void {
    this.emit('signal', { at: Date.now(), direction, topic, deviceId, message });
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#refreshTimer);
    this.#next?.end(true);
    this.#next = undefined;
    this.#reconnectTimer = undefined;
    this.#settleStart?.reject(new Error('ViewerClient stopped before it connected'));
    this.#settleStart = undefined;
    const timeoutMs = this.#options.stopTimeoutMs ?? 2000;
    await withTimeout(Promise.all([...this.#watches].map((w) => w.close())), timeoutMs, 'closing watches').catch(() => {});
    const client = this.#client;
    const wasConnected = this.#connected;
    this.#client = undefined;
    this.#connected = false;
    this.#bridges.clear();
    if (client === undefined) return;
    // A DISCONNECT packet tells the broker to discard the will (MQTT-3.14.4-3): each watch said bye already.
    await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), timeoutMs, 'disconnecting').catch(() => client.end(true));
    if (wasConnected) this.emit('disconnected', undefined);
  }
}
