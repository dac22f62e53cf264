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
import { clientIdOwner } from '../protocol/client-ids.ts';
import type { Topics } from '../protocol/topics.ts';
import { covers, type AccessPolicy, type PublishDecision } from '../security/access.ts';
import { encode } from '../protocol/codec.ts';
import { toErrorMessage, type ErrorCode, type ProtocolError } from '../protocol/errors.ts';
import { AuthError, type Authenticator, type Identity } from '../security/identity.ts';
import type { AclAccess, OperatorAcl } from '../security/operator-acl.ts';
import { ConnectionEvents } from './connection-events.ts';
import { deliverOnce } from './deliver-once.ts';
import { ConnectionGate, DEFAULT_LIMITS, rateLimitedPayload, type BrokerLimits, type GateCounters } from './gate.ts';
import type { GuardedConnection } from './guarded-connection.ts';
import { persistTo } from './persisted-state.ts';
import { markRetainedEnd, retainedFirst, subscribed, type HoldLimit } from './retained-first.ts';
import { indexRetained } from './retained-index.ts';
import { StateDb } from './state-db.ts';
import { DEFAULT_SESSION_LIMITS, StoredSessions, type SessionLimits, type SessionPersistence } from './stored-sessions.ts';

export type Transport = 'tcp' | 'tls' | 'ws' | 'wss' | 'internal';

export interface BrokerOptions {
  /** Node ID, used as the Aedes ID and the bridge's identity. */
  id: string;
  authenticate: Authenticator;
  access: AccessPolicy;
  /** The protocol's topics (the bridge cards of dead nodes' wills, the protocol root operator rules cannot touch). */
  topics: Topics;
  /** The operator's rule file as it is now (src/security/operator-acl.ts): asked after tali's own rules. */
  operatorRules?: (() => OperatorAcl) | undefined;
  logger: Logger;
  /** Milliseconds a new connection may take to send CONNECT (default 10 000). */
  connectTimeoutMs?: number;
  /** Limits on clients from outside (./gate.ts); defaults fill what is not given. */
  limits?: Partial<BrokerLimits> | undefined;
  /** Bounds on stored sessions (./stored-sessions.ts); defaults fill what is not given. */
  sessions?: Partial<SessionLimits> | undefined;
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
  /**
   * Embedded only: the SQLite file that keeps retained messages and stored sessions across restarts and crashes
   * (./state-db.ts); undefined: in memory only. Opening it can throw TaliError TALI_ERR_STATE_DB.
   */
  stateFile?: string | undefined;
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
  /** The client ID as sent in CONNECT (Aedes names a client that sent none itself). */
  requestedClientId?: string;
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
  denied: [action: 'publish' | 'subscribe' | 'will' | 'forward', role: string | undefined];
  /** A client's message refused with a protocol error code (counted in tali_errors_total). */
  rejected: [code: ErrorCode, role: string | undefined];
}

export class Broker extends EventEmitter<BrokerEvents> {
  readonly aedes: Aedes;
  readonly #peers = new WeakMap<Connection, Peer>();
  readonly #options: BrokerOptions;
  readonly #log: Logger;
  readonly #gate: ConnectionGate;
  #sessions!: StoredSessions;
  /** $SYS events of device connections, for admins (./connection-events.ts). */
  readonly #connectionEvents: ConnectionEvents;
  /** The state file, when there is one (embedded mode with persistence). */
  #state: StateDb | undefined;
  #closed = false;

  private constructor(aedes: Aedes, options: BrokerOptions) {
    super();
    this.aedes = aedes;
    this.#options = options;
    this.#log = options.logger;
    this.#connectionEvents = new ConnectionEvents(aedes, (client) => this.identityOf(client));
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
      onRateLimited: (identity) => this.emit('rejected', 'TALI_ERR_RATE_LIMITED', identity?.role),
    });
  }

  static async create(options: BrokerOptions): Promise<Broker> {
    // The hooks are installed after construction because they need the Broker's state; Aedes reads them per call.
    const shared = options.shared;
    const state = !shared && options.stateFile ? StateDb.open({ file: options.stateFile, onError: (err) => options.logger.error({ err: err.message, file: options.stateFile }, 'state file not written') }) : undefined;
    let aedes: Aedes;
    let restored: Awaited<ReturnType<typeof persistTo>> | undefined;
    try {
      aedes = await Aedes.createBroker({
        id: options.id,
        connectTimeout: options.connectTimeoutMs ?? 10_000,
        ...(shared && { mq: shared.mq, persistence: shared.persistence, heartbeatInterval: shared.heartbeatIntervalMs }),
      });
      const persistence = (aedes as unknown as { persistence: Parameters<typeof indexRetained>[0] & Parameters<typeof persistTo>[0] }).persistence;
      // Before any client connects: retained cards by topic level instead of a scan per SUBSCRIBE (retained-index.ts).
      if (!shared) indexRetained(persistence);
      // Then what the last run kept, and every change from now on, in the state file (persisted-state.ts).
      if (state) restored = await persistTo(persistence, state, options.id);
      // Embedded or shared: a SUBSCRIBE's retained messages before live ones on its topics (retained-first.ts).
      markRetainedEnd(persistence as unknown as Parameters<typeof markRetainedEnd>[0]);
    } catch (err) {
      state?.close();
      throw err;
    }
    const broker = new Broker(aedes, options);
    broker.#state = state;
    broker.#countRouting();
    broker.#sessions = new StoredSessions((aedes as unknown as { persistence: SessionPersistence }).persistence, {
      limits: { ...DEFAULT_SESSION_LIMITS, maxSessionsTotal: { ...DEFAULT_LIMITS, ...options.limits }.maxConnections, ...options.sessions },
      shared: shared !== undefined,
      identityOf: (client) => ('conn' in client ? broker.identityOf(client as Client) : undefined),
      maySubscribe: (identity, clientId, filter) => broker.#maySubscribe(identity, clientId, filter),
      mayReceive: (identity, clientId, topic) => broker.#mayReceive(identity, clientId, topic),
      onLimit: (limit, fields) => broker.#gate.trip(limit, fields, 'stored session full: message not stored'),
      onDropped: (clientId, reason) => broker.#log.info({ event: 'session_dropped', clientId, reason }, `stored session dropped: ${reason}`),
      journal: state && { saved: (clientId, owner, online) => state.saveSession(clientId, owner, online), deleted: (clientId) => state.deleteSession(clientId) },
    });
    if (state && restored) {
      const queued = restored.queued;
      // A client connected when the last run ended was there, as far as is known, until it ended.
      const sessions = state.sessions().map((row) => ({
        clientId: row.clientId,
        owner: row.owner,
        leftAt: row.online ? Math.max(row.leftAt, state.previousAliveAt ?? 0) : row.leftAt,
        ...(queued.get(row.clientId) ?? { messages: 0, bytes: 0 }),
      }));
      broker.#sessions.restore(sessions);
      broker.#log.info(
        { event: 'state_restored', file: state.file, retained: restored.retained, sessions: sessions.length, queued: sessions.reduce((n, s) => n + s.messages, 0) },
        'state restored',
      );
    }
    const heldLimit: HoldLimit = {
      maxHeldBytes: { ...DEFAULT_LIMITS, ...options.limits }.maxClientBufferBytes,
      onOverflow: (client, heldBytes) => {
        const value = heldLimit.maxHeldBytes;
        broker.#gate.trip('maxClientBufferBytes', { clientId: client.id, value, heldBytes }, 'client is not reading: live messages held behind its retained ones');
        client.close();
      },
    };
    aedes.preConnect = (client, packet, callback) => {
      const peer = broker.#peers.get(client.conn);
      if (peer) peer.requestedClientId = packet.clientId;
      deliverAtHighestQos(client);
      deliverOnce(client);
      retainedFirst(client, heldLimit); // last: see retained-first.ts
      callback(null, true);
    };
    broker.#skipDropped();
    aedes.authenticate = broker.#authenticate;
    aedes.authorizePublish = broker.#authorizePublish;
    aedes.authorizeSubscribe = broker.#authorizeSubscribe;
    aedes.authorizeForward = broker.#authorizeForward;
    aedes.on('clientReady', (client) => {
      const peer = broker.#peers.get(client.conn);
      if (peer?.identity === undefined) return;
      peer.ready = true;
      broker.#sessions.attach(client);
      broker.emit('clientReady', client.id, peer.identity, peer.transport);
    });
    aedes.on('clientDisconnect', (client) => {
      const peer = broker.#peers.get(client.conn);
      broker.#sessions.detach(client);
      if (peer?.ready) broker.emit('clientGone', client.id, peer.identity, peer.transport);
    });
    aedes.on('subscribe', (subscriptions, client) => {
      const identity = broker.identityOf(client);
      const granted = subscriptions.filter((s) => (s.qos as number) !== 128).map((s) => s.topic); // 128: refused (MQTT-3.9.3)
      subscribed(client, granted); // before Aedes creates this SUBSCRIBE's retained stream
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
   * re-keyed. Its will is published (a removed camera goes offline like any other). Stored sessions of matching
   * identities are dropped too, so none of them is resumed. Returns how many connections were closed.
   */
  disconnectWhere(predicate: (identity: Identity, clientId: string) => boolean, reason: string): number {
    void this.#sessions.forgetWhere(predicate, reason);
    let closed = 0;
    for (const client of Object.values((this.aedes as unknown as { clients: Record<string, Client> }).clients)) {
      const peer = this.#peers.get(client.conn);
      const identity = peer?.identity;
      if (peer === undefined || identity === undefined || peer.transport === 'internal' || !predicate(identity, client.id)) continue;
      this.#log.warn(
        { event: 'disconnected', reason, clientId: client.id, role: identity.role, identity: identity.id, address: peer.address },
        `client disconnected: ${reason}`,
      );
      this.#connectionEvents.closing(client, 'closed-by-bridge');
      client.close();
      closed++;
    }
    return closed;
  }

  identityOf(client: Client): Identity | undefined {
    return this.#peers.get(client.conn)?.identity;
  }

  /** The state file (embedded mode with persistence): what the last run kept, and when it was last alive. */
  get state(): StateDb | undefined {
    return this.#state;
  }

  /** Stored sessions (./stored-sessions.ts); cluster mode tells it about clients that moved to another node. */
  get sessions(): StoredSessions {
    return this.#sessions;
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
    this.#sessions.close();
    // The state file last: closing clients still writes (their sessions' departure times).
    return new Promise<void>((resolve) => this.aedes.close(() => resolve())).finally(() => this.#state?.close());
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
    const login = async (): Promise<Identity> => {
      // MQTT-3.1.3-9: a client ID no identity can hold is refused as an identifier, before any password check.
      const requested = peer.requestedClientId ?? '';
      if (clientIdOwner(requested) === undefined) throw new AuthError(2, `client ID ${JSON.stringify(requested.slice(0, 80))} is not one tali accepts`);
      const identity = await this.#options.authenticate({ clientId: client.id, username, password, address: peer.address, transport: peer.transport });
      // MQTT-3.1.4-2 lets a new connection take over a client ID; only the identity that holds it may do that.
      const holder = (this.aedes as unknown as { clients: Record<string, Client | undefined> }).clients[client.id];
      const held = holder && holder !== client ? this.#peers.get(holder.conn) : undefined;
      if (held && (held.transport === 'internal' || held.identity?.role !== identity.role || held.identity?.id !== identity.id)) {
        throw new AuthError(2, `client ID "${client.id}" is in use by another identity`);
      }
      // A will is a publish made later on the client's behalf, possibly by another node (cluster): checked now,
      // topic and payload, like any publish; a client whose will it may not publish is not let in.
      const will = (client as unknown as { _will?: { topic: string; payload: Buffer; retain: boolean } | null })._will;
      if (will && !this.#mayPublish(identity, client.id, will.topic, will.retain, will.payload)) {
        this.#denied(client, identity, 'will', will.topic);
        throw new AuthError(5, `not allowed to publish its will to ${will.topic}`);
      }
      const present = await this.#sessions.resume(client.id, identity, client.clean);
      if (present !== undefined) (client.conn as unknown as Partial<GuardedConnection>).presentSession?.(present);
      return identity;
    };
    login()
      .then((identity) => {
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
    if (client === null) return callback(this.willAllowedWithoutClient(packet) ? null : new Error(`will not allowed on ${packet.topic}`));
    const identity = this.identityOf(client);
    const payload = 'payload' in packet ? packet.payload : undefined;
    const decision = identity === undefined ? 'deny' : this.#publishDecision(identity, client.id, packet.topic, packet.retain, payload);
    if (decision === 'allow') return callback(null);
    if (decision !== 'deny' && identity !== undefined && 'cmd' in packet) {
      // Not for this client, but no reason to drop its connection: the message goes nowhere (a QoS 1 one is still
      // acknowledged, so it is not resent) and the client is told why on its down topic, as over the rate limit.
      this.#dropped.add(packet);
      this.#rejected(client, identity, decision);
      return callback(null);
    }
    this.#denied(client, identity, 'publish', packet.topic);
    // MQTT 3.1.1 has no negative PUBACK: Aedes closes the connection, the only refusal the protocol offers.
    this.#connectionEvents.closing(client, 'closed-by-bridge');
    callback(new Error(`not allowed to publish to ${packet.topic}`));
  };

  readonly #authorizeSubscribe = (
    client: Client,
    sub: Subscription,
    callback: (err: Error | null, sub?: Subscription | null) => void,
  ): void => {
    const identity = this.identityOf(client);
    if (identity !== undefined && this.#maySubscribe(identity, client.id, sub.topic)) return callback(null, sub);
    this.#denied(client, identity, 'subscribe', sub.topic);
    callback(null, null); // SUBACK 0x80 for this filter (MQTT-3.9.3); the connection stays up
  };

  /**
   * Every delivery, whatever its path (live, retained at SUBSCRIBE, queued in a stored session and sent at the next
   * CONNECT), is checked against the receiving client's rights as they are now and against the subscriptions it
   * holds now; Aedes' default forwards everything it matched. A copy goes out when it must change:
   * - MQTT-3.8.4-6 / MQTT-3.3.5-1: never above the QoS granted to the client's matching subscription. Aedes looks
   *   the subscription up by topic name (lib/client.js:140), which misses wildcard filters, so a retained QoS 1 card
   *   reached a QoS 0 `device/+/status` subscription at QoS 1.
   * - MQTT-3.3.1-3: the DUP flag of the publisher's packet is not passed on.
   * For a queued message Aedes only reads whether this returns something (lib/handlers/connect.js:281); its DUP
   * flag comes from the store (./stored-sessions.ts).
   */
  readonly #authorizeForward = (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null => {
    const identity = this.identityOf(client);
    if (identity === undefined) return null;
    const granted = grantedQos(client, packet.topic);
    if (granted === undefined) return null;
    if (!this.#mayReceive(identity, client.id, packet.topic)) {
      this.#denied(client, identity, 'forward', packet.topic);
      return null;
    }
    if (packet.qos <= granted && !packet.dup) return packet;
    return { ...packet, qos: Math.min(packet.qos, granted) as AedesPublishPacket['qos'], dup: false };
  };

  /**
   * Access decisions: tali's own rules (src/security/access.ts), then the operator's rule file for what lies outside
   * the protocol root (it can add topics, never widen tali's: no grant under `{root}/`, no publish to `$SYS`).
   */
  #mayPublish(identity: Identity, clientId: string, topic: string, retain: boolean, payload: Buffer | string | undefined): boolean {
    return this.#publishDecision(identity, clientId, topic, retain, payload) === 'allow';
  }

  /** tali's rules decide (a scoped token's message may be refused with an error code); the operator's may only add. */
  #publishDecision(identity: Identity, clientId: string, topic: string, retain: boolean, payload: Buffer | string | undefined): PublishDecision {
    const decision = this.#options.access.decidePublish(identity, topic, retain, payload);
    if (decision !== 'deny') return decision;
    return !topic.startsWith('$') && this.#operatorAllows(identity, clientId, 'write', topic) ? 'allow' : 'deny';
  }

  #maySubscribe(identity: Identity, clientId: string, filter: string): boolean {
    return this.#options.access.canSubscribe(identity, filter) || this.#operatorAllows(identity, clientId, 'read', filter);
  }

  /** A topic name is a filter without wildcards: whoever may subscribe to it may receive what is published on it. */
  #mayReceive(identity: Identity, clientId: string, topic: string): boolean {
    return this.#maySubscribe(identity, clientId, topic);
  }

  #operatorAllows(identity: Identity, clientId: string, access: AclAccess, topicOrFilter: string): boolean {
    const rules = this.#options.operatorRules?.();
    if (rules === undefined || identity.role === 'bridge') return false;
    const root = this.#options.topics.root;
    if (topicOrFilter === root || topicOrFilter.startsWith(`${root}/`)) return false;
    return rules.allows({ username: identity.source === 'anonymous' ? undefined : identity.id, clientId }, access, topicOrFilter);
  }

  /**
   * Cluster: a node publishes the wills of a dead node's clients without a client (aedes.js _clearWills). Each will
   * was checked at its CONNECT (`#authenticate`); as a second line, it must lie in the topics of the identity its
   * client ID names, or be the dead node's own bridge card. ./cluster.ts drops the others before Aedes sees them
   * (Aedes stops its whole will sweep at the first refused one).
   */
  willAllowedWithoutClient(will: { topic: string; retain: boolean; payload?: Buffer | string; clientId?: string; brokerId?: string }): boolean {
    if (will.brokerId !== undefined && will.topic === this.#options.topics.bridge(will.brokerId)) return true;
    const owner = clientIdOwner(will.clientId ?? '');
    if (owner === undefined) return false;
    // A viewer's will is its connection's `leave` (src/embedded-broker.ts): its rules are per client ID.
    return (['device', 'viewer'] as const).some((role) =>
      this.#mayPublish({ role, id: owner, clientId: will.clientId }, will.clientId ?? '', will.topic, will.retain, will.payload),
    );
  }

  /** Client publishes authorised only to be dropped (`#rejected`): Aedes acknowledges them, `publish` skips them. */
  readonly #dropped = new WeakSet<object>();

  /** Skips the messages `#authorizePublish` dropped; everything else is routed as Aedes would. */
  #skipDropped(): void {
    // Aedes's publish takes (packet, client, done) from its handlers, (packet, done) from the API.
    type Publish = (packet: AedesPublishPacket, client: Client | null | ((err?: Error) => void), done?: (err?: Error) => void) => void;
    const aedes = this.aedes as unknown as { publish: Publish };
    const publish = aedes.publish.bind(this.aedes);
    aedes.publish = (packet, client, done) => {
      const callback = typeof client === 'function' ? client : done;
      if (this.#dropped.delete(packet)) return callback?.();
      publish(packet, typeof client === 'function' ? null : client, callback);
    };
  }

  #rejected(client: Client, identity: Identity, error: ProtocolError): void {
    const peer = this.#peers.get(client.conn);
    this.emit('rejected', error.code, identity.role);
    this.#log.warn(
      { event: 'rejected', code: error.code, clientId: client.id, role: identity.role, identity: identity.id, address: peer?.address },
      error.message,
    );
    const topic = this.#options.access.replyTopic(identity);
    if (topic) this.publish({ topic, payload: encode(toErrorMessage(error, Date.now())), qos: 1, retain: false }).catch(() => {});
  }

  #denied(client: Client, identity: Identity | undefined, action: 'publish' | 'subscribe' | 'will' | 'forward', topic: string): void {
    const peer = this.#peers.get(client.conn);
    this.emit('denied', action, identity?.role);
    // A refused delivery follows a subscription that was allowed (rights changed since, or a wide operator rule).
    this.#log[action === 'forward' ? 'debug' : 'warn'](
      { event: 'denied', action, topic, clientId: client.id, role: identity?.role, identity: identity?.id, address: peer?.address },
      `${action} denied`,
    );
  }
}

/**
 * MQTT-3.3.5-1: a message matching several of a client's subscriptions goes out once, at the highest QoS they were
 * granted. Aedes delivers once per matching subscription and drops all but the first (lib/client.js:103, dedupe), so
 * when a QoS 0 subscription's delivery came first, the message went out at QoS 0 even with a QoS 1 subscription
 * matching too. Set before any subscription exists (Aedes captures the function when it subscribes): a QoS 0
 * subscription's delivery takes the QoS path when a QoS 1 subscription matches as well; authorizeForward caps it.
 */
function deliverAtHighestQos(client: Client): void {
  const c = client as unknown as { deliver0: Deliver; deliverQoS: Deliver };
  const deliver0 = c.deliver0;
  const deliverQoS = c.deliverQoS;
  c.deliver0 = (packet, cb) => (packet.qos > 0 && (grantedQos(client, packet.topic) ?? 0) > 0 ? deliverQoS(packet, cb) : deliver0(packet, cb));
}

type Deliver = (packet: AedesPublishPacket, cb: () => void) => void;

/** The highest QoS granted to the client's subscriptions that match `topic` (MQTT §4.7), if any matches. */
function grantedQos(client: Client, topic: string): number | undefined {
  let granted: number | undefined;
  for (const [filter, sub] of Object.entries((client as unknown as { subscriptions: Record<string, { qos: number }> }).subscriptions)) {
    if (covers(filter, topic) && (granted === undefined || sub.qos > granted)) granted = sub.qos;
  }
  return granted;
}

