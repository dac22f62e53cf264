/**
 * The MQTT connection of an SDK client (DeviceClient, ViewerClient), kept up: start() and stop(), a new mqtt.js client
 * per connection, reconnects with backoff, a refused CONNECT at start-up reported once instead of retried, and the
 * bridge cards seen on the connection. What the client says over it (will, subscriptions, messages, events) comes
 * from its hooks. Browser-safe: no node:* imports.
 */
import type { MqttClient } from 'mqtt';
import type { BridgeStatus } from '../protocol/index.ts';
import { backoffDelay, backoffOptions, type BackoffOptions } from './backoff.ts';
import { connackCode, ConnectRefusedError, isFatalConnack, withTimeout, type ClientConnectOptions, type MqttConnector } from './mqtt-link.ts';

/** What differs from client to client in a CONNECT; keepalive and the clean session are the keeper's. */
export type ConnectIdentity = Omit<ClientConnectOptions, 'keepaliveS' | 'clean'>;

/** What the keeper reads of an SDK client's own options (DeviceClientOptions and ViewerClientOptions have them all). */
export interface ConnectionSettings {
  connect: MqttConnector;
  backoff?: Partial<BackoffOptions> | undefined;
  /** MQTT keepalive in seconds (default 30). */
  keepaliveS?: number | undefined;
  /** How long stop() waits for each of its goodbyes and the DISCONNECT, in ms (default 2000). */
  stopTimeoutMs?: number | undefined;
}

/** Who the client is and what it says over the connection. */
export interface ConnectionHooks<Login> {
  /** The SDK class, for errors: "DeviceClient was stopped; make a new one". */
  name: string;
  /** Who logs in, for ConnectRefusedError: `device "cam1"`; `idName` is what its user name is (default "user name"). */
  who: string;
  idName?: string | undefined;
  /**
   * What the next CONNECT logs in with, asked before each connection: a device's fixed secret at once, a viewer's
   * credential from its provider (a rejection is retried like a failed connection).
   */
  login(): Login | Promise<Login>;
  /** The CONNECT of a new connection with that login (a handover brings its own). */
  identity(login: Login): ConnectIdentity;
  /** At each CONNACK, before the connection counts: subscribe. A rejection ends the connection, which is retried. */
  prepare(client: MqttClient): Promise<void>;
  message(topic: string, payload: Uint8Array): void;
  connected(reconnect: boolean, login: Login): void;
  disconnected(error: Error | undefined): void;
  reconnecting(info: { attempt: number; delayMs: number }): void;
  /** The connection went (also during stop()), before any event: what rode on it is over. */
  lost?(): void;
  /** stop() begins while the connection still counts as up: say goodbye over it (a viewer's byes). */
  closing?(timeoutMs: number): Promise<void>;
  /** stop(), the connection no longer counts as up but is still open: the last message before DISCONNECT (a device's offline card). */
  farewell?(client: MqttClient, timeoutMs: number): Promise<void>;
}

/** A connection lasting this long counts as healthy: the next loss starts the backoff from the beginning again. */
const STABLE_CONNECTION_MS = 10_000;

/**
 * The connection's states (stop() ends any of them; a refused first CONNECT stops the keeper):
 *
 *   start() ──► connecting ──CONNACK, prepared──► connected ──'close'──► backoff ──timer──► connecting
 *               connecting ──'close'────────────────────────────────────► backoff
 *                                                 connected ──handover()──► handing over
 *   handing over ──the new one prepared──────► connected, over the new one (`done`)
 *   handing over ──the new one's 'close'─────► connected, over the old one (`failed`)
 *   handing over ──the old one's 'close'─────► handing over, old one gone
 *   handing over, old one gone ──the new one prepared──► connected, over the new one (`done`)
 *   handing over, old one gone ──the new one's 'close'──► backoff (the connection is lost)
 *
 * While handing over, `connected` stays true and `client` is the old connection, even once it is gone: the new one is
 * up and finishing its `prepare` (a viewer's adopts), and the sessions it adopted live on over it.
 */
export class ConnectionKeeper<Login> {
  /** Bridge cards seen since the last CONNACK (retained, so each new connection delivers them again), by bridge ID. */
  readonly bridges = new Map<string, BridgeStatus>();
  readonly #settings: ConnectionSettings;
  readonly #hooks: ConnectionHooks<Login>;
  readonly #backoff: BackoffOptions;
  #client: MqttClient | undefined;
  /** A second connection taking over from #client (see handover) until it is prepared; `orphaned` once #client closed. */
  #candidate: Candidate | undefined;
  #lastError: Error | undefined;
  #connected = false;
  #everConnected = false;
  #connectedAt = 0;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #started: Promise<void> | undefined;
  #settleStart: { resolve: () => void; reject: (err: Error) => void } | undefined;
  #stopped: Promise<void> | undefined;

  constructor(settings: ConnectionSettings, hooks: ConnectionHooks<Login>) {
    this.#settings = settings;
    this.#hooks = hooks;
    this.#backoff = backoffOptions(settings.backoff);
  }

  /** The live connection's client, if any; subscribed once `connected`. */
  get client(): MqttClient | undefined {
    return this.#client;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** stop() was called: no new connection from now on. */
  get stopped(): boolean {
    return this.#stopped !== undefined;
  }

  /** A handover's connection is on its way (see handover). */
  get handingOver(): boolean {
    return this.#candidate !== undefined;
  }

  /** The newest card of an online bridge, if any. */
  get onlineBridge(): BridgeStatus | undefined {
    let newest: BridgeStatus | undefined;
    for (const card of this.bridges.values()) {
      if (card.state === 'online' && (newest === undefined || card.ts > newest.ts)) newest = card;
    }
    return newest;
  }

  /** Connects; resolves at the first CONNACK (after `prepare`), rejects with ConnectRefusedError. Idempotent. */
  start(): Promise<void> {
    if (this.#started) return this.#started;
    if (this.#stopped) return Promise.reject(new Error(`${this.#hooks.name} was stopped; make a new one`));
    this.#started = new Promise<void>((resolve, reject) => {
      this.#settleStart = { resolve, reject };
    });
    this.#connect();
    return this.#started;
  }

  /** Says goodbye (hooks), disconnects cleanly (so the broker drops the will) and clears every timer. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  /**
   * Moves to a second connection as `identity` without dropping the first until then: for a credential about to
   * expire (MQTT 3.1.1 cannot re-authenticate a live connection). Once the new one is prepared it becomes the
   * connection, `done` runs, and the old one ends with a DISCONNECT, which publishes no will. `failed` runs if the
   * new one closes first while the old one is still up. If the old one closes first (its token expired, say), the new
   * one still takes over once prepared: what it adopted meanwhile is its own now, and ending it would end that too.
   * Only if it closes as well is the connection lost.
   */
  handover(identity: ConnectIdentity, outcome: { done: () => void; failed: () => void }): void {
    const client = this.#open(identity);
    this.#candidate = { client, failed: outcome.failed, orphaned: false };
    client.on('connect', () => void this.#onHandoverConnack(client, outcome.done));
  }

  #connect(): void {
    this.#reconnectTimer = undefined;
    this.#lastError = undefined;
    const login = this.#hooks.login();
    // A fixed secret connects at once; a credential from a provider is awaited, and stop() may come meanwhile.
    if (!(login instanceof Promise)) return this.#connectAs(login);
    login.then(
      (value) => {
        if (!this.#stopped) this.#connectAs(value);
      },
      (err: unknown) => this.#scheduleReconnect(err as Error, false),
    );
  }

  #connectAs(login: Login): void {
    const client = this.#open(this.#hooks.identity(login));
    this.#client = client;
    client.on('connect', () => void this.#onConnack(client, login));
  }

  /**
   * A new mqtt.js client. Every handler checks that its client is still wanted: a replaced client is forgotten, not
   * unhooked (mqtt.js keeps its own listeners on the same events).
   */
  #open(identity: ConnectIdentity): MqttClient {
    const client = this.#settings.connect({ ...identity, keepaliveS: this.#settings.keepaliveS ?? 30, clean: true });
    client.on('error', (err) => {
      if (client === this.#client) this.#lastError = err;
    });
    // While a handover overlaps two connections both deliver: the hooks drop duplicates by (sessionId, seq).
    client.on('message', (topic, payload) => {
      if (client === this.#client || client === this.#candidate?.client) this.#hooks.message(topic, payload);
    });
    client.on('close', () => (this.#candidate?.client === client ? this.#onHandoverClosed(this.#candidate) : this.#onClose(client)));
    return client;
  }

  /** Runs `prepare`; false (and the connection ended, so 'close' follows) if it failed. */
  async #prepare(client: MqttClient): Promise<boolean> {
    try {
      await this.#hooks.prepare(client);
      return true;
    } catch (err) {
      if (client === this.#client) this.#lastError = err as Error;
      client.end(true); // → 'close' → reconnect with backoff
      return false;
    }
  }

  async #onConnack(client: MqttClient, login: Login): Promise<void> {
    if (client !== this.#client) return; // stopped or replaced while connecting
    if (!(await this.#prepare(client)) || client !== this.#client) return;
    this.#connected = true;
    this.#connectedAt = Date.now();
    const reconnect = this.#everConnected;
    this.#everConnected = true;
    this.#settleStart?.resolve();
    this.#settleStart = undefined;
    this.#hooks.connected(reconnect, login);
  }

  async #onHandoverConnack(next: MqttClient, done: () => void): Promise<void> {
    if (next !== this.#candidate?.client || !(await this.#prepare(next)) || next !== this.#candidate?.client) return;
    const previous = this.#client;
    this.#candidate = undefined;
    this.#client = next;
    this.#connectedAt = Date.now();
    done();
    // A DISCONNECT packet discards that connection's will (MQTT-3.14.4-3): what rode on it goes on over the new one.
    previous?.end(false);
  }

  #onHandoverClosed(candidate: Candidate): void {
    this.#candidate = undefined;
    candidate.client.end(true);
    if (this.#stopped || !this.#connected) return;
    if (candidate.orphaned) this.#lose(); // both connections are gone now
    else candidate.failed();
  }

  #onClose(client: MqttClient): void {
    if (client !== this.#client) return;
    client.end(true);
    if (this.#candidate === undefined) return this.#lose();
    this.#candidate.orphaned = true; // the new one takes over once prepared (see handover)
  }

  /** The connection is gone, with what rode on it: reconnect with backoff (or report a refused first CONNECT). */
  #lose(): void {
    const error = this.#lastError;
    this.#client = undefined;
    const wasConnected = this.#connected;
    this.#connected = false;
    this.bridges.clear();
    this.#hooks.lost?.();
    if (this.#stopped) return;

    const code = error ? connackCode(error) : undefined;
    if (isFatalConnack(code) && !this.#everConnected) {
      // Wrong ID or secret at start-up: a configuration error, so say so once instead of retrying forever.
      const refused = new ConnectRefusedError(this.#hooks.who, code, this.#hooks.idName);
      this.#settleStart?.reject(refused);
      this.#settleStart = undefined;
      void this.stop();
      this.#hooks.disconnected(refused);
      return;
    }
    this.#scheduleReconnect(error ?? (wasConnected ? new Error('connection lost') : new Error('connection failed')), wasConnected);
  }

  #scheduleReconnect(error: Error, wasConnected: boolean): void {
    if (this.#stopped) return;
    if (wasConnected && Date.now() - this.#connectedAt >= STABLE_CONNECTION_MS) this.#attempt = 0;
    const delayMs = backoffDelay(this.#attempt, this.#backoff);
    const attempt = ++this.#attempt;
    this.#hooks.disconnected(error);
    if (this.#stopped) return; // a 'disconnected' listener stopped us
    this.#reconnectTimer = setTimeout(() => this.#connect(), delayMs);
    this.#hooks.reconnecting({ attempt, delayMs });
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#candidate?.client.end(true);
    this.#candidate = undefined;
    this.#settleStart?.reject(new Error(`${this.#hooks.name} stopped before it connected`));
    this.#settleStart = undefined;
    const timeoutMs = this.#settings.stopTimeoutMs ?? 2000;
    // Only a client with something to say waits here: the others let go of the connection at once.
    if (this.#hooks.closing) await this.#hooks.closing(timeoutMs);
    const client = this.#client;
    const wasConnected = this.#connected;
    this.#client = undefined;
    this.#connected = false;
    this.bridges.clear();
    if (client === undefined) return;
    try {
      if (wasConnected && this.#hooks.farewell) await this.#hooks.farewell(client, timeoutMs);
      // A DISCONNECT packet tells the broker to discard the will (MQTT-3.14.4-3): the goodbyes above said it already.
      await withTimeout(new Promise<void>((resolve) => client.end(false, {}, () => resolve())), timeoutMs, 'disconnecting');
    } catch {
      client.end(true);
    }
    if (wasConnected) this.#hooks.disconnected(undefined);
  }
}

/** A handover's connection; `orphaned` once the connection it takes over from has closed. */
interface Candidate {
  client: MqttClient;
  failed: () => void;
  orphaned: boolean;
}
