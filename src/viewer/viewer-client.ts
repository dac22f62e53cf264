/**
 * A viewer's (or an admin's) signaling link to a tali bridge over MQTT: connects with a user name and a password (or
 * a token provider), sets `leave` as its last will, follows the device cards and metrics, and watches cameras
 * (WatchSession per camera) over its connection's topics, `{root}/v1/viewer/{user}/{clientId}/up` and `.../down`.
 * ConnectionKeeper reconnects with backoff; this client watches again after a reconnect, and moves its watches to
 * the new connection of a token refresh with `adopt` (protocol §16.4). Browser-safe: no node:* imports; the MQTT
 * client comes from the `connect` factory.
 */
import type { MqttClient } from 'mqtt';
import type { BackoffOptions } from '../client/backoff.ts';
import { BridgeClock } from '../client/bridge-clock.ts';
import { ConnectionKeeper, type ConnectIdentity } from '../client/connection-keeper.ts';
import { IceGrant, type IceGrantInput, type PeerIceConfig } from '../client/ice-grant.ts';
import { TypedEmitter } from '../client/emitter.ts';
import { publish, subscribe, withTimeout, type MqttConnector } from '../client/mqtt-link.ts';
import {
  assertValidId, decode, DEFAULT_ROOT, DuplicateFilter, encode, ProtocolError, PROTOCOL_VERSION, SequenceCounter, Topics,
  viewerClientId, type BridgeStatus, type Leave, type Message, type MessageOnChannel,
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

/**
 * A password, or a token with its expiry (ms since the epoch) and, when the bridge mints TURN credentials, the
 * viewer's own ICE servers that came with it (`ice` of POST /api/token).
 */
export type Credential = string | { secret: string; expiresAt: number; ice?: IceGrantInput | undefined };

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

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

type AdoptBody = { type: 'adopt'; deviceId: string; connection: string };

/**
 * The least time a token refresh leaves itself before the old token ends (and the broker closes its connection with
 * its sessions): a token request, a connect, two SUBSCRIBEs and an answered adopt take ~0.15 s, but a loaded machine
 * stalls for more than a second and a background tab's timers fire late. 20 % of an 8 s token (1.4 s) was not
 * always enough in full test-suite runs.
 */
const REFRESH_MARGIN_MS = 3000;

/** How long a token refresh waits for the bridge to confirm that the new connection adopted a watch. */
const ADOPT_TIMEOUT_MS = 5000;

function randomId(length: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(length)), (b) => ID_ALPHABET[b & 63]).join('');
}

export class ViewerClient extends TypedEmitter<ViewerClientEvents> {
  readonly user: string;
  readonly topics: Topics;
  /**
   * This viewer's own ICE servers (TURN credentials): from its token, and from the `ice-servers` the bridge sends with
   * each watch answer (for the next attempts). New peers get them with the bridge card's.
   */
  readonly iceGrant = new IceGrant();
  readonly devices = new DeviceDirectory();
  readonly #options: ViewerClientOptions;
  readonly #clock: BridgeClock;
  readonly #outgoing = new SequenceCounter();
  readonly #seen = new DuplicateFilter();
  readonly #watches = new Set<WatchSession>();
  /** Live protocol sessions → their watch (and so their camera). */
  readonly #routes = new Map<string, WatchSession>();
  /** Devices whose up/down topics this (admin) client follows for the signaling log. */
  readonly #followed = new Set<string>();
  readonly #link: WatchLink;
  readonly #keeper: ConnectionKeeper<Credential>;
  /**
   * The secret in every watch (`connection`, protocol §16.1) that lets this client's next connection `adopt` them.
   * New after a lost connection (whose sessions end with it); kept across a token refresh.
   */
  #connection = '';
  /** Which connection (mqtt.js client) owns each live session, as the bridge sees it: where its messages go. */
  readonly #via = new Map<string, MqttClient>();
  /** Adoptions waiting for the bridge's confirmation on the new connection: sessionId → settle. */
  readonly #adopting = new Map<string, (adopted: boolean) => void>();
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** The credential the live connection logged in with, while a refresh replaces it. */
  #refreshing: (Credential & object) | undefined;

  constructor(options: ViewerClientOptions) {
    super();
    assertValidId(options.user, 'user name');
    this.user = options.user;
    this.topics = new Topics(options.root ?? DEFAULT_ROOT);
    this.#options = options;
    this.#clock = new BridgeClock(options.clock);
    this.#keeper = new ConnectionKeeper<Credential>(options, {
      name: 'ViewerClient',
      who: `viewer "${this.user}"`,
      login: () => this.#credential(),
      identity: (credential) => {
        this.#connection = randomId(16);
        return this.#identity(credential);
      },
      prepare: async (client) => {
        await this.#subscribeAll(client);
        // A token refresh's second connection: it takes the watches over before the first one goes.
        if (this.#keeper.connected && client !== this.#keeper.client) await this.#adoptWatches(client);
      },
      message: (topic, payload) => this.#onMessage(topic, payload),
      connected: (reconnect, credential) => {
        this.#scheduleRefresh(credential);
        this.emit('connected', { reconnect });
        for (const watch of this.#watches) watch.begin();
      },
      disconnected: (error) => this.emit('disconnected', error),
      reconnecting: (info) => this.emit('reconnecting', info),
      lost: () => {
        clearTimeout(this.#refreshTimer);
        for (const watch of this.#watches) watch.connectionLost();
      },
      closing: async (timeoutMs) => {
        clearTimeout(this.#refreshTimer);
        await withTimeout(Promise.all([...this.#watches].map((w) => w.close())), timeoutMs, 'closing watches').catch(() => {});
      },
    });
    const client = this;
    this.#link = {
      get connected() {
        return client.#keeper.connected;
      },
      get onlineBridge() {
        return client.onlineBridge;
      },
      get connection() {
        return client.#connection;
      },
      iceConfig: () => this.#iceConfig(),
      newSessionId: () => `vw${randomId(20)}`,
      send: (sessionId, body) => this.#send(sessionId, body),
      forget: (sessionId) => {
        this.#routes.delete(sessionId);
        this.#via.delete(sessionId);
        this.#outgoing.forget(sessionId);
        this.#seen.forget(sessionId);
      },
      route: (sessionId, watch) => void this.#routes.set(sessionId, watch),
    };
  }

  get connected(): boolean {
    return this.#keeper.connected;
  }

  /** The client clock corrected to the bridge's (learnt from TALI_ERR_STALE): what goes into `ts`. */
  now(): number {
    return this.#clock.now();
  }

  get bridges(): ReadonlyMap<string, BridgeStatus> {
    return this.#keeper.bridges;
  }

  get onlineBridge(): BridgeStatus | undefined {
    return this.#keeper.onlineBridge;
  }

  /**
   * Connects; resolves at the first CONNACK (after subscribing). Network failures are retried with backoff; a refused
   * CONNECT (bad user name or password) rejects with ConnectRefusedError and stops. Idempotent.
   */
  start(): Promise<void> {
    return this.#keeper.start();
  }

  /** Closes every watch (bye), disconnects cleanly (so the broker drops the will) and clears every timer. Idempotent. */
  stop(): Promise<void> {
    return this.#keeper.stop();
  }

  /** Watches a camera; the watch starts now if connected, else at the next CONNACK. */
  watch(deviceId: string, createPeer: ViewerPeerFactory, options: WatchOptions = {}): WatchSession {
    assertValidId(deviceId, 'device ID');
    if (this.#keeper.stopped) throw new Error('ViewerClient was stopped');
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
    const client = this.#keeper.client;
    if (!this.#keeper.connected || client === undefined) return;
    try {
      await subscribe(client, [this.topics.device(deviceId, 'up'), this.topics.device(deviceId, 'down')]);
    } catch (err) {
      this.#followed.delete(deviceId);
      throw err;
    }
  }

  unfollowSignaling(deviceId: string): void {
    if (!this.#followed.delete(deviceId)) return;
    this.#keeper.client?.unsubscribe([this.topics.device(deviceId, 'up'), this.topics.device(deviceId, 'down')]);
  }

  /** Sends a session's message over the connection that owns the session (a new watch: the live connection). */
  async #send(sessionId: string, body: ViewerUpBody | AdoptBody, via?: MqttClient): Promise<void> {
    const client = via ?? this.#via.get(sessionId) ?? this.#keeper.client;
    if (!this.#keeper.connected || client === undefined) throw new Error('not connected to the broker');
    if (body.type === 'watch') this.#via.set(sessionId, client);
    const message = { v: PROTOCOL_VERSION, ...body, sessionId, seq: this.#outgoing.next(sessionId), ts: this.now() } as MessageOnChannel<'viewer-up'>;
    const payload = encode(message);
    // The bridge's own check, run here first: a message it would refuse throws here instead of coming back as an error.
    decode('viewer-up', payload, this.onlineBridge?.maxMessageBytes);
    const topic = this.topics.viewer(this.user, client.options.clientId ?? '', 'up');
    this.#signal('out', topic, message, this.#routes.get(sessionId)?.deviceId);
    await publish(client, topic, payload);
  }

  /** Who this client logs in as: a new client ID (the level of its topics), and `leave` on its up topic as will. */
  #identity(credential: Credential): ConnectIdentity {
    const leave: Leave = { v: PROTOCOL_VERSION, type: 'leave', ts: this.now() };
    // Viewers may hold several connections (tabs); the client ID only has to be unique, and stable within one.
    const clientId = viewerClientId(this.user, randomId(8));
    return {
      clientId,
      username: this.user,
      password: typeof credential === 'string' ? credential : credential.secret,
      will: { topic: this.topics.viewer(this.user, clientId, 'up'), payload: encode(leave), qos: 1, retain: false },
    };
  }

  /**
   * Moves every live watch to `next`, the second connection of a token refresh: an `adopt` per session over it, and
   * the bridge's `stream` on it as the answer (protocol §16.4). Meanwhile the sessions' own messages still go over
   * the old connection, which the bridge accepts until it leaves. A session the bridge did not confirm in time is
   * watched again once the old connection is gone (its sessions end with it).
   */
  async #adoptWatches(next: MqttClient): Promise<void> {
    const previous = this.#keeper.client;
    const moving = [...this.#routes].filter(([sessionId]) => this.#via.get(sessionId) === previous);
    const results = await Promise.all(
      moving.map(async ([sessionId, watch]) => {
        const confirmed = new Promise<boolean>((resolve) => this.#adopting.set(sessionId, resolve));
        try {
          await this.#send(sessionId, { type: 'adopt', deviceId: watch.deviceId, connection: this.#connection }, next);
          const adopted = await withTimeout(confirmed, ADOPT_TIMEOUT_MS, 'adopt').catch(() => false);
          if (adopted) this.#via.set(sessionId, next);
          return adopted;
        } catch {
          return false;
        } finally {
          this.#adopting.delete(sessionId);
        }
      }),
    );
    if (results.every(Boolean) && ![...this.#via.values()].includes(previous as MqttClient)) return;
    // Once the keeper has switched (right after this resolves) and the old connection is going: what still belongs
    // to it (not confirmed, or watched while this ran) is watched again over the new one.
    setTimeout(() => {
      for (const [sessionId, client] of this.#via) {
        if (client === previous) this.#routes.get(sessionId)?.restart('not adopted by the new connection');
      }
    }, 0);
  }

  async #credential(): Promise<Credential> {
    const password = this.#options.password;
    const credential = typeof password === 'string' ? password : await password();
    if (typeof credential !== 'string' && credential.ice) this.iceGrant.update(credential.ice);
    return credential;
  }

  #iceConfig(): PeerIceConfig {
    return this.iceGrant.config(this.onlineBridge?.iceServers);
  }

  /** Subscribes a fresh connection to what this client reads; rejects if the broker refuses its own topics. */
  async #subscribeAll(client: MqttClient): Promise<void> {
    const t = this.topics;
    const cards = this.#options.devices ? this.#options.devices.flatMap((d) => [t.device(d, 'status'), t.device(d, 'metrics')]) : [t.allDevices('status'), t.allDevices('metrics')];
    await subscribe(client, [t.viewer(this.user, client.options.clientId ?? '', 'down'), t.allBridges()]);
    // Not fatal: a viewer token scoped to some devices may not read every card (give `devices` then).
    await subscribe(client, cards).catch((err: Error) => this.emit('warning', `device cards: ${err.message}`));
    const followed = [...this.#followed].flatMap((d) => [t.device(d, 'up'), t.device(d, 'down')]);
    if (followed.length > 0) await subscribe(client, followed).catch(() => this.#followed.clear());
  }

  /**
   * A token expires, and the broker then closes the connection that used it (MQTT 3.1.1 cannot re-authenticate).
   * So at 80 % of its life, and at least REFRESH_MARGIN_MS before it ends: a fresh credential, a second connection
   * with it that adopts every watch (#adoptWatches), then a clean DISCONNECT of the first. The media never stops (it
   * does not cross MQTT), and the watches now belong to the new connection: they end with it, not with the old one.
   */
  #scheduleRefresh(credential: Credential, inMs?: number): void {
    clearTimeout(this.#refreshTimer);
    if (typeof credential === 'string') return;
    const left = credential.expiresAt - Date.now();
    const delayMs = inMs ?? Math.max(1000, Math.min(left * 0.8, left - REFRESH_MARGIN_MS));
    this.#refreshTimer = setTimeout(() => void this.#switchConnection(credential), delayMs);
  }

  async #switchConnection(current: Credential & object): Promise<void> {
    if (this.#keeper.stopped || !this.#keeper.connected || this.#keeper.handingOver) return;
    this.#refreshing = current;
    // The connection may go while the credential comes (its token expired first, say): what rode on it is over, and
    // the keeper reconnects with a login of its own. A handover now would only open a needless second connection.
    const live = this.#keeper.client;
    const outlived = () => this.#keeper.stopped || this.#keeper.client !== live;
    let credential: Credential;
    try {
      credential = await this.#credential();
    } catch (err) {
      if (outlived()) return;
      this.emit('warning', `refreshing the login failed: ${(err as Error).message}`);
      return this.#scheduleRefresh(current, Math.min(5000, Math.max(0, (current.expiresAt - Date.now()) / 2)));
    }
    if (outlived()) return;
    this.#keeper.handover(this.#identity(credential), {
      done: () => {
        this.#scheduleRefresh(credential);
        this.emit('refreshed', credential);
      },
      failed: () => {
        this.emit('warning', 'refreshing the login failed: the new connection closed');
        if (this.#refreshing) this.#scheduleRefresh(this.#refreshing, 5000);
      },
    });
  }

  #onMessage(topic: string, payload: Uint8Array): void {
    const parsed = this.topics.parse(topic);
    if (parsed === undefined) return;
    try {
      if (parsed.kind === 'viewer') {
        // This client's connections only: the live one, and during a token refresh the next one.
        if (parsed.id === this.user && parsed.channel === 'down') this.#onDown(topic, payload, parsed.connection);
      } else if (parsed.kind === 'bridge') {
        if (payload.byteLength === 0) this.#keeper.bridges.delete(parsed.id);
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

  #onDown(topic: string, payload: Uint8Array, connection: string): void {
    const message = decode('viewer-down', payload);
    if (message.type === 'ice-servers') {
      this.iceGrant.update(message);
      this.#signal('in', topic, message, undefined);
      for (const watch of this.#watches) watch.iceServersArrived();
      return;
    }
    if ('seq' in message && message.sessionId !== undefined && message.seq !== undefined) {
      if (!this.#seen.accept(message.sessionId, message.seq)) return; // QoS 1 redelivery (MQTT-4.3.2)
    }
    if (message.type === 'error') this.#clock.learn(message); // TALI_ERR_STALE: stamp on the bridge's clock from now on
    const adopting = message.sessionId === undefined ? undefined : this.#adopting.get(message.sessionId);
    if (adopting !== undefined && connection !== this.#keeper.client?.options.clientId) {
      // The bridge's reply to an adopt, on the new connection: `stream` confirms it; an error refuses it, and is
      // not the session's business (the session goes on until the old connection goes).
      adopting(message.type === 'stream');
      if (message.type === 'error') return;
    }
    const watch = message.sessionId === undefined ? undefined : this.#routes.get(message.sessionId);
    this.#signal('in', topic, message, watch?.deviceId);
    watch?.receive(message);
  }

  #onBridge(card: BridgeStatus): void {
    this.#keeper.bridges.set(card.bridgeId, card);
    this.emit('bridge', card);
    // A bridge node that went away (cluster mode: killed, its card published by its will) took its viewer sessions.
    if (card.state === 'offline') for (const watch of this.#watches) watch.bridgeOffline(card.bridgeId);
  }

  #signal(direction: 'in' | 'out', topic: string, message: Message, deviceId: string | undefined): void {
    this.emit('signal', { at: Date.now(), direction, topic, deviceId, message });
  }
}
