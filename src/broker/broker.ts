/**
 * The embedded MQTT 3.1.1 broker: Aedes behind tali's identities and access rules. This folder is the only code that
 * touches Aedes; everything else speaks MQTT to it through a client (see src/mqtt/), as it would to Mosquitto.
 *
 * Listeners (./tcp.ts, ./websocket.ts, ./in-process.ts) hand connections to `accept()` with what they know about the
 * peer; the hooks below look that up to authenticate and authorise.
 */
import { Aedes, type AedesPublishPacket, type Client, type Connection, type Subscription } from 'aedes';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { AccessPolicy } from '../security/access.ts';
import { AuthError, type Authenticator, type Identity } from '../security/identity.ts';
import { ConnectionGate, DEFAULT_LIMITS, rateLimitedPayload, type BrokerLimits, type GateCounters } from './gate.ts';
import type { GuardedConnection } from './guarded-connection.ts';
import { indexRetained } from './retained-index.ts';

export type Transport = 'tcp' | 'tls' | 'ws' | 'wss' | 'internal';

export interface BrokerOptions {
  /** Node ID, used as the Aedes ID and the bridge's identity. */
  id: string;
  authenticate: Authenticator;
  access: AccessPolicy;
  logger: Logger;
  /** Milliseconds a new connection may take to send CONNECT (default 10 000). */
  connectTimeoutMs?: number;
  /** Limits on clients from outside (./gate.ts); defaults fill what is not given. */
  limits?: Partial<BrokerLimits> | undefined;
  /**
   * A last will the bridge gives a connection whatever its CONNECT carried, e.g. the offline card of a libpeer device
   * (which sends none): published like any will when the connection ends without DISCONNECT, also by another node's
   * sweep in a cluster.
   */
  willFor?: ((identity: Identity, clientId: string) => BrokerWill | undefined) | undefined;
  /**
   * Cluster mode: Aedes routes through this emitter and keeps its state in this persistence, shared with the other
   * nodes; ./cluster.ts installs the rest on the created broker.
   */
  shared?: { mq: unknown; persistence: unknown; heartbeatIntervalMs: number } | undefined;
}

export interface BrokerWill {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
}

interface Peer {
  transport: Transport;
  address: string;
  identity?: Identity;
  /** clientReady was reported, so clientGone will be: metrics gauges stay balanced. */
  ready?: boolean;
}

/** Events a broker reports to the rest of the bridge (metrics, logs). */
export interface BrokerEvents {
  clientReady: [clientId: string, identity: Identity, transport: Transport];
  clientGone: [clientId: string, identity: Identity | undefined, transport: Transport];
  /** A client's SUBSCRIBE was acknowledged; `filters` are the ones granted. */
  subscribed: [clientId: string, identity: Identity, filters: string[]];
  authFailed: [transport: Transport, returnCode: number];
  denied: [action: 'publish' | 'subscribe', role: string | undefined];
}

export class Broker extends EventEmitter<BrokerEvents> {
  readonly aedes: Aedes;
  readonly #peers = new WeakMap<Connection, Peer>();
  readonly #options: BrokerOptions;
  readonly #log: Logger;
  readonly #gate: ConnectionGate;
  #closed = false;

  private constructor(aedes: Aedes, options: BrokerOptions) {
    super();
    this.aedes = aedes;
    this.#options = options;
    this.#log = options.logger;
    const limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#gate = new ConnectionGate({
      limits,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      logger: options.logger,
      identityOf: (conn) => this.#peers.get(conn as unknown as Connection)?.identity,
      notifyRateLimited: (identity) => {
        const topic = options.access.replyTopic(identity);
        if (topic) this.publish({ topic, payload: rateLimitedPayload(limits.publishRate), qos: 1, retain: false }).catch(() => {});
      },
    });
  }

  static async create(options: BrokerOptions): Promise<Broker> {
    // The hooks are installed after construction because they need the Broker's state; Aedes reads them per call.
    const shared = options.shared;
    const aedes = await Aedes.createBroker({
      id: options.id,
      connectTimeout: options.connectTimeoutMs ?? 10_000,
      ...(shared && { mq: shared.mq, persistence: shared.persistence, heartbeatInterval: shared.heartbeatIntervalMs }),
    });
    // Before any client connects: retained cards by topic level instead of a scan per SUBSCRIBE (retained-index.ts).
    if (!shared) indexRetained((aedes as unknown as { persistence: Parameters<typeof indexRetained>[0] }).persistence);
    const broker = new Broker(aedes, options);
    broker.#countRouting();
    aedes.authenticate = broker.#authenticate;
    aedes.authorizePublish = broker.#authorizePublish;
    aedes.authorizeSubscribe = broker.#authorizeSubscribe;
    aedes.on('clientReady', (client) => {
      const peer = broker.#peers.get(client.conn);
      if (peer?.identity === undefined) return;
      peer.ready = true;
      broker.emit('clientReady', client.id, peer.identity, peer.transport);
    });
    aedes.on('clientDisconnect', (client) => {
      const peer = broker.#peers.get(client.conn);
      if (peer?.ready) broker.emit('clientGone', client.id, peer.identity, peer.transport);
    });
    aedes.on('subscribe', (subscriptions, client) => {
      const identity = broker.identityOf(client);
      const granted = subscriptions.filter((s) => (s.qos as number) !== 128).map((s) => s.topic); // 128: refused (MQTT-3.9.3)
      if (identity !== undefined && granted.length > 0) broker.emit('subscribed', client.id, identity, granted);
    });
    aedes.on('clientError', (client, err) => broker.#log.debug({ clientId: client.id, err: err.message }, 'client error'));
    aedes.on('connectionError', (client, err) =>
      broker.#log.debug({ clientId: client.id, err: err.message }, 'connection error'),
    );
    aedes.on('clientReady', (client) => broker.#gate.ready(client.conn as unknown as GuardedConnection, () => client.close()));
    return broker;
  }

  /**
   * Hands a new connection to the broker. `address` is the peer's IP (or "internal"). Connections from outside pass
   * the gate (admission limits, then a guard on the byte stream: ./gate.ts); Aedes sees them once they sent a valid
   * CONNECT. The in-process connection of the bridge's own client goes straight to Aedes.
   */
  accept(stream: Connection, transport: Transport, address: string, request?: IncomingMessage): void {
    if (this.#closed) {
      stream.destroy();
      return;
    }
    if (transport !== 'internal') {
      const guarded = this.#gate.accept(stream, transport, address, (conn) => this.aedes.handle(conn as unknown as Connection, request));
      if (guarded) this.#peers.set(guarded as unknown as Connection, { transport, address });
      return;
    }
    this.#peers.set(stream, { transport, address });
    this.aedes.handle(stream, request);
  }

  /** Connections from outside admitted so far (`pending`: no CONNACK yet), and limits tripped / MQTT rules enforced. */
  get gate(): { connections: { total: number; pending: number }; counters: GateCounters } {
    return { connections: this.#gate.connections, counters: this.#gate.counters };
  }

  /**
   * Closes every connected client whose identity matches, e.g. identities removed from the credential store or
   * re-keyed. Its will is published (a removed camera goes offline like any other). Returns how many were closed.
   */
  disconnectWhere(predicate: (identity: Identity, clientId: string) => boolean, reason: string): number {
    let closed = 0;
    for (const client of Object.values((this.aedes as unknown as { clients: Record<string, Client> }).clients)) {
      const peer = this.#peers.get(client.conn);
      const identity = peer?.identity;
      if (peer === undefined || identity === undefined || peer.transport === 'internal' || !predicate(identity, client.id)) continue;
      this.#log.warn(
        { event: 'disconnected', reason, clientId: client.id, role: identity.role, identity: identity.id, address: peer.address },
        `client disconnected: ${reason}`,
      );
      client.close();
      closed++;
    }
    return closed;
  }

  identityOf(client: Client): Identity | undefined {
    return this.#peers.get(client.conn)?.identity;
  }

  get connectedClients(): number {
    return this.aedes.connectedClients;
  }

  /** Publishes as the broker itself (no client), e.g. to clear a retained message. */
  publish(packet: { topic: string; payload: Buffer | string; qos: 0 | 1; retain: boolean }): Promise<void> {
    return new Promise((resolve, reject) =>
      this.aedes.publish(
        { cmd: 'publish', dup: false, ...packet, payload: Buffer.from(packet.payload) },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }

  /**
   * Resolves once no message is being routed (every delivery written to its connection), or after `timeoutMs`.
   * Aedes acknowledges a QoS 1 publish before routing it, so a PUBACK alone does not mean subscribers have it;
   * shutdown waits on this before closing connections, so a last bye is not lost.
   */
  drain(timeoutMs: number): Promise<void> {
    if (this.#routing === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.#drained;
      function done() {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  #routing = 0;
  readonly #drained = new Set<() => void>();

  /** Counts messages between mqemitter's emit and its callback, which runs after every subscriber's write. */
  #countRouting(): void {
    const mq = (this.aedes as unknown as { mq: { emit: (packet: unknown, cb?: (err?: Error) => void) => void } }).mq;
    const emit = mq.emit.bind(mq);
    mq.emit = (packet, cb) => {
      this.#routing++;
      emit(packet, (err) => {
        if (--this.#routing === 0) for (const done of [...this.#drained]) done();
        cb?.(err);
      });
    };
  }

  /** Closes Aedes and every client connection. Listeners close their own servers. Idempotent. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#gate.close();
    return new Promise((resolve) => this.aedes.close(() => resolve()));
  }

  readonly #authenticate = (
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    done: (err: (Error & { returnCode: number }) | null, ok: boolean | null) => void,
  ): void => {
    const peer = this.#peers.get(client.conn);
    if (peer === undefined) {
      done(Object.assign(new Error('unknown connection'), { returnCode: 3 }), null);
      return;
    }
    if (peer.transport === 'internal') {
      peer.identity = { role: 'bridge', id: this.#options.id };
      done(null, true);
      return;
    }
    this.#options
      .authenticate({ clientId: client.id, username, password, address: peer.address, transport: peer.transport })
      .then((identity) => {
        // MQTT-3.1.4-2 lets a new connection take over a client ID; only the identity that holds it may do that.
        const holder = (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients[client.id];
        const held = holder && holder !== client ? this.#peers.get(holder.conn) : undefined;
        if (held && (held.transport === 'internal' || held.identity?.role !== identity.role || held.identity?.id !== identity.id)) {
          throw new AuthError(2, `client ID "${client.id}" is in use by another identity`);
        }
        peer.identity = identity;
        const will = this.#options.willFor?.(identity, client.id);
        // Aedes stores client._will as the will after authenticate (lib/handlers/connect.js storeWill).
        if (will !== undefined) (client as unknown as { _will: BrokerWill })._will = will;
        done(null, true);
      })
      .catch((err: unknown) => {
        const returnCode = err instanceof AuthError ? err.returnCode : 3;
        // Logged once per failed attempt, with who and from where; never the password.
        this.#log.warn(
          { event: 'auth_failed', username, clientId: client.id, address: peer.address, transport: peer.transport, returnCode },
          err instanceof AuthError ? err.message : `authentication error: ${(err as Error).message}`,
        );
        this.emit('authFailed', peer.transport, returnCode);
        done(Object.assign(new Error((err as Error).message), { returnCode }), null);
      });
  };

  readonly #authorizePublish = (
    client: Client | null,
    packet: AedesPublishPacket | { topic: string; retain: boolean },
    callback: (err?: Error | null) => void,
  ): void => {
    // client is null for wills published by another node in a cluster; they were authorised when stored.
    if (client === null) return callback(null);
    const identity = this.identityOf(client);
    const payload = 'payload' in packet ? packet.payload : undefined;
    if (identity !== undefined && this.#options.access.canPublish(identity, packet.topic, packet.retain, payload)) {
      return callback(null);
    }
    this.#denied(client, identity, 'publish', packet.topic);
    // MQTT 3.1.1 has no negative PUBACK: Aedes closes the connection, the only refusal the protocol offers.
    callback(new Error(`not allowed to publish to ${packet.topic}`));
  };

  readonly #authorizeSubscribe = (
    client: Client,
    sub: Subscription,
    callback: (err: Error | null, sub?: Subscription | null) => void,
  ): void => {
    const identity = this.identityOf(client);
    if (identity !== undefined && this.#options.access.canSubscribe(identity, sub.topic)) return callback(null, sub);
    this.#denied(client, identity, 'subscribe', sub.topic);
    callback(null, null); // SUBACK 0x80 for this filter (MQTT-3.9.3); the connection stays up
  };

  #denied(client: Client, identity: Identity | undefined, action: 'publish' | 'subscribe', topic: string): void {
    const peer = this.#peers.get(client.conn);
    this.emit('denied', action, identity?.role);
    this.#log.warn(
      { event: 'denied', action, topic, clientId: client.id, role: identity?.role, identity: identity?.id, address: peer?.address },
      `${action} denied`,
    );
  }
}

