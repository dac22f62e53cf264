/**
 * Cluster mode: several tali nodes, each with its own Aedes, share subscriptions, retained cards, wills and message
 * routing through one Redis (mqemitter-redis for routing, aedes-persistence-redis for state): one server, the
 * primary that Redis Sentinel names, or a Redis Cluster (`connectTo`). Every message, even
 * between two clients of one node, goes through Redis pub/sub.
 *
 * What plain Aedes does not do and this module adds (measured with aedes 1.2.0, mqemitter-redis 7.2.1,
 * aedes-persistence-redis 12.0.0, Redis 7.0):
 *
 * - Survive Redis going away: mqemitter-redis re-emits connection errors on its `state` emitter, which crashes the
 *   process when nobody listens. Every connection here has listeners, and `available` says whether the node can
 *   route now. It is proven end to end: a probe message published through Redis must come back through this node's
 *   own subscription (after a reconnect, ioredis reports `ready` before its re-subscriptions are done).
 * - Not act on a stale view after an outage: Aedes declares a node dead 3 heartbeats after its last one, and then
 *   publishes the wills of that node's clients. An outage longer than that would fire the wills of every live
 *   client of every node (this one included). Wills of this node are never taken for a dead node's; after an outage,
 *   dead-node wills wait until the other nodes had time to be heard again.
 * - Not mark a client offline that moved: a camera whose node died reconnects to another node (a new will under that
 *   node's ID) before the dead node's will is due. That stale will would say "offline" for a camera that is online;
 *   it is deleted instead of published.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Aedes, AedesPublishPacket, Client } from 'aedes';
import persistenceRedis from 'aedes-persistence-redis';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { describeRedisTarget, redisTarget, type RedisTarget } from '../config/redis-target.ts';
import mqemitterRedis from 'mqemitter-redis';
import type { Logger } from 'pino';
import type { Broker } from './broker.ts';

export interface RedisBackendOptions {
  /** The `cluster` option: a redis:// URL, redis-sentinel://… or redis-cluster://… (src/config/redis-target.ts). */
  url: string;
  logger: Logger;
  /** The Aedes heartbeat period of every node (a node is dead after 3 without one). */
  heartbeatIntervalMs: number;
  /** Milliseconds between probes while the backend is available (default 500; 4× faster while it is not). */
  probeIntervalMs?: number;
}

export interface RedisBackendEvents {
  available: [];
  unavailable: [reason: string];
  /**
   * Redis came back without the cluster's state (restarted without persistence, or failed over to an empty replica):
   * retained cards, wills and sessions are gone. Clients must reconnect to publish them again.
   */
  reset: [];
  /** A QoS 1 publish could not be handed to Redis, so it was not acknowledged (its connection is closed). */
  unacknowledged: [clientId: string, reason: string];
}

export interface ClusterRules {
  /**
   * Topics that this node's own (bridge) clients receive only when a client of this node published them: cameras'
   * `up` topics, so that the node a camera is connected to, and only that one, answers its offers.
   */
  localOnly: (topic: string) => boolean;
  /**
   * Milliseconds a device's or viewer's QoS 1 publish may wait for the backend to come back before its connection is
   * closed without PUBACK. The bridge's own publishes wait as long as it takes.
   */
  holdMs: number;
}

interface Will {
  clientId: string;
  brokerId: string;
}

type StreamWill = (brokers?: Record<string, number>) => AsyncIterable<Will>;

interface WillPersistence {
  streamWill: StreamWill;
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
  destroy(): Promise<void>;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export class RedisBackend extends EventEmitter<RedisBackendEvents> {
  /** The `cluster` option as a log may show it (no password). */
  readonly url: string;
  /** mqemitter-redis: give it to Aedes as `mq`. */
  readonly mq: ReturnType<typeof mqemitterRedis>;
  /** aedes-persistence-redis: give it to Aedes as `persistence`. */
  readonly persistence: unknown;
  readonly #connections: (Redis | Cluster)[];
  readonly #db: Redis | Cluster;
  /** A random value this cluster keeps in Redis: gone or changed after an outage means Redis lost its data. */
  #epoch: string | undefined;
  readonly #log: Logger;
  readonly #heartbeatMs: number;
  readonly #probeMs: number;
  #available = false;
  #reason = 'connecting to Redis';
  #outages = 0;
  #downSince = performance.now();
  #graceUntil = 0;
  #lastEcho = 0;
  /** This node's own probe came back since the last outage. */
  #proven = false;
  #provenAt = 0;
  readonly #readyAt = new Map<string, number>();
  readonly #repliedAt = new Map<string, number>();
  #peersBefore: string[] = [];
  #aedes: Aedes | undefined;
  #probeTopic = '';
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: RedisBackendOptions) {
    super();
    const target = redisTarget(options.url);
    this.url = describeRedisTarget(target);
    this.#log = options.logger;
    this.#heartbeatMs = options.heartbeatIntervalMs;
    this.#probeMs = options.probeIntervalMs ?? 500;
    const redisOptions: RedisOptions = {
      // Commands wait for the connection to come back rather than fail inside Aedes, whose error paths end the
      // process. Clients are refused or held at the broker while the backend is unavailable, so little waits here.
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(100 * times, 1000),
      connectTimeout: 2000,
      connectionName: 'tali',
    };
    const connect = (role: string) => {
      const conn = connectTo(target, { ...redisOptions, connectionName: `tali-${role}` });
      conn.on('error', (err: Error) => this.#down(`Redis ${role} connection: ${err.message}`));
      conn.on('close', () => this.#down(`Redis ${role} connection closed`));
      conn.on('ready', () => this.#probe());
      return conn;
    };
    const sub = connect('sub');
    const pub = connect('pub');
    if (pub instanceof Cluster) publishInOrder(pub);
    const db = connect('db');
    // aedes-persistence-redis sends some commands without awaiting them (asyncPersistence.js: getDecodedValue's and
    // delWill's LREM, putWill's LREM and RPUSH): one that fails (the broker closed the connection while its clients
    // were still finishing, or a Redis Cluster gave up retrying) would be an unhandled rejection, which ends the
    // process. Every command's promise gets a handler here; the callers that await it still see the error.
    const send = db.sendCommand.bind(db) as (...args: unknown[]) => Promise<unknown>;
    (db as unknown as { sendCommand: (...args: unknown[]) => Promise<unknown> }).sendCommand = (...args) => {
      const reply = send(...args);
      reply?.catch?.(() => {});
      return reply;
    };
    this.#connections = [sub, pub, db];
    this.#db = db;
    this.mq = mqemitterRedis({ subConn: sub, pubConn: pub, concurrency: 100, matchEmptyLevels: true } as Parameters<typeof mqemitterRedis>[0]);
    // Without a listener here, the first connection error after start-up ends the process.
    const mq = this.mq as unknown as { state: EventEmitter; closing: boolean; close: (cb?: () => void) => void; _close: (cb: () => void) => void };
    mq.state.on('error', (err: Error) => this.#down(`Redis: ${err.message}`));
    // mqemitter-redis closes with QUIT and waits for both connections to end: with Redis away the QUITs wait in the
    // offline queue for ever (and reject unhandled when the connections go). Closing drops the connections instead.
    mq.close = (cb) => {
      mq.closing = true;
      sub.disconnect();
      pub.disconnect();
      mq._close(cb ?? (() => {}));
    };
    this.persistence = persistenceRedis({ conn: db, cluster: target.kind === 'cluster' });
    (this.persistence as WillPersistence).on('error', (err) => this.#log.warn({ err: err.message }, 'cluster persistence error'));
  }

  /** Whether this node can route messages through Redis right now (proven by a probe that came back). */
  get available(): boolean {
    return this.#available;
  }

  /** Why it is not available (for /readyz and CONNACK logs). */
  get reason(): string {
    return this.#available ? 'ok' : this.#reason;
  }

  /** Why this node cannot route now, or undefined when it can (for /readyz). */
  get problem(): string | undefined {
    return this.#available ? undefined : `cluster backend unavailable (${this.#reason})`;
  }

  /** Whether a client with this ID is connected to this node (not to another node of the cluster). */
  isLocal(clientId: string): boolean {
    const clients = (this.#aedes as unknown as { clients?: Record<string, { closed?: boolean } | undefined> } | undefined)?.clients;
    const client = clients?.[clientId];
    return client !== undefined && client.closed !== true;
  }

  /** Increments at each outage: a publish that saw it change may not have reached every node. */
  get outages(): number {
    return this.#outages;
  }

  /** Resolves true once available, or false after `timeoutMs` (Infinity: until closed). */
  whenAvailable(timeoutMs: number): Promise<boolean> {
    if (this.#available) return Promise.resolve(true);
    if (this.#closed || timeoutMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.off('available', onAvailable);
        this.#closeWaiters.delete(onClosed);
        resolve(ok);
      };
      const onAvailable = () => done(true);
      const onClosed = () => done(false);
      this.on('available', onAvailable);
      this.#closeWaiters.add(onClosed);
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => done(false), timeoutMs);
    });
  }

  readonly #closeWaiters = new Set<() => void>();

  /**
   * Called once the broker runs on this backend (Broker.create with `shared: backend.shared`): starts probing, guards
   * the will sweep and installs the cluster rules on the broker's hooks (see `#install`).
   */
  attach(broker: Broker, rules: ClusterRules): void {
    const aedes = broker.aedes;
    this.#aedes = aedes;
    this.#install(broker, rules);
    this.#probeTopic = `$SYS/${aedes.id}/tali/probe`;
    const mq = aedes as unknown as { mq: { on: (topic: string, fn: (packet: unknown, cb: () => void) => void) => void } };
    mq.mq.on(this.#probeTopic, (_packet, cb) => {
      this.#lastEcho = performance.now();
      if (!this.#proven && this.#connections.every((c) => c.status === 'ready')) {
        this.#proven = true;
        this.#provenAt = Date.now();
        this.#sayReady();
        this.#maybeUp();
      }
      cb();
    });
    // After an outage every node resubscribes on its own schedule; a message routed before a node resubscribed is
    // lost for that node's clients. So a node that is back says so, answers the others' "ready" with its own, and
    // becomes available once every live node said ready since (or 3 heartbeats passed: the silent ones are dead).
    (mq.mq.on as (topic: string, fn: (packet: { payload: Buffer }, cb: () => void) => void) => void)(READY_TOPIC, (packet, cb) => {
      const id = packet.payload.toString();
      if (id !== aedes.id) {
        this.#readyAt.set(id, Date.now());
        if (this.#proven && Date.now() - (this.#repliedAt.get(id) ?? 0) > 1000) {
          this.#repliedAt.set(id, Date.now());
          this.#sayReady();
        }
        this.#maybeUp();
      }
      cb();
    });
    this.#guardWills(broker);
    const tick = () => {
      if (this.#closed) return;
      if (this.#proven && performance.now() - this.#lastEcho > 4 * this.#probeMs) this.#down('Redis did not route the probe in time');
      this.#maybeUp();
      this.#probe();
      this.#timer = setTimeout(tick, this.#available ? this.#probeMs : this.#probeMs / 4);
    };
    tick();
  }

  /** Stops probing and disconnects; call it after the broker closed (Aedes closes the emitter). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#available = false;
    for (const waiter of [...this.#closeWaiters]) waiter();
    const destroyed = (this.persistence as WillPersistence).destroy().catch(() => {});
    await Promise.race([destroyed, new Promise((resolve) => setTimeout(resolve, 500).unref())]);
    for (const conn of this.#connections) conn.disconnect();
  }

  /** What Broker.create needs for cluster mode. */
  get shared(): { mq: unknown; persistence: unknown; heartbeatIntervalMs: number } {
    return { mq: this.mq, persistence: this.persistence, heartbeatIntervalMs: this.#heartbeatMs };
  }

  /** Resolves once the three Redis connections are up, or rejects after `timeoutMs` with why. */
  async connected(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!this.#connections.every((c) => c.status === 'ready')) {
      if (this.#closed) throw new Error('closed');
      if (performance.now() > deadline) throw new Error(`cannot reach Redis at ${this.url}: ${this.#reason}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * The broker's hooks, wrapped (whatever they check still runs first):
   * - CONNECT while unavailable: CONNACK 3 "server unavailable" at once, instead of a CONNECT that hangs on Redis.
   * - QoS 1 PUBLISH: Aedes writes PUBACK before it routes a message, so a message a client was told was delivered
   *   could vanish with Redis away. Here the message is routed from the authorisation hook, and PUBACK follows only
   *   once Redis took it with no outage in between; the handler's own publish afterwards is skipped. A device's or
   *   viewer's publish waits at most `holdMs` for the backend, then its connection is closed unacknowledged (the SDKs
   *   reconnect and offer again; an MQTT client resends unacknowledged QoS 1). The bridge's own publishes wait and
   *   are routed again after an outage (receivers drop duplicates by sessionId and seq).
   * - Delivery to the bridge's own clients: `localOnly` topics only when published on this node.
   * - Takeover: a client that connects to another node with the ID of one of ours (a camera that moved while its
   *   old connection here was still open) makes Aedes close ours; its will would then say "offline" after the new
   *   connection said "online". That will is dropped (Aedes deletes it).
   */
  #install(broker: Broker, rules: ClusterRules): void {
    const aedes = broker.aedes as unknown as {
      id: string;
      authenticate: (client: Client, user: string | undefined, password: Buffer | undefined, done: (err: (Error & { returnCode: number }) | null, ok: boolean | null) => void) => void;
      authorizePublish: (client: Client | null, packet: AedesPublishPacket, callback: (err?: Error | null) => void) => void;
      authorizeForward: (client: Client, packet: AedesPublishPacket) => AedesPublishPacket | null | void;
      publish: (packet: AedesPublishPacket, client: Client | null | ((err?: Error) => void), done?: (err?: Error) => void) => void;
      on: (event: 'error', listener: (err: Error) => void) => void;
    };
    // Persistence and will-sweep failures land here; without a listener they would end the process.
    aedes.on('error', (err) => this.#log.error({ err: err.message }, 'cluster broker error'));
    const isBridge = (client: Client) => broker.identityOf(client)?.role === 'bridge';
    // A node that just started is alive before its first heartbeat: count it from its birth message.
    const mq = aedes as unknown as { mq: { on: (topic: string, fn: (packet: { payload: Buffer }, cb: () => void) => void) => void } };
    mq.mq.on('$SYS/+/birth', (packet, cb) => {
      const id = packet.payload.toString();
      if (id !== aedes.id) (broker.aedes.brokers as Record<string, number>)[id] = Date.now();
      cb();
    });
    // A client that connected to another node takes its stored session there; that node expires it from now on.
    mq.mq.on('$SYS/+/new/clients', (packet, cb) => {
      const node = (packet as unknown as { topic: string }).topic.split('/')[1];
      if (node !== aedes.id) broker.sessions.movedAway(packet.payload.toString());
      cb();
    });

    const authenticate = aedes.authenticate;
    aedes.authenticate = (client, user, password, done) => {
      if (this.#available) return authenticate(client, user, password, done);
      const reason = `cluster backend unavailable (${this.#reason})`;
      this.#log.warn({ event: 'refused', clientId: client.id, reason }, 'connection refused');
      done(Object.assign(new Error(reason), { returnCode: 3 }), null);
    };

    const routed = new WeakSet<object>();
    const publish = aedes.publish.bind(broker.aedes);
    aedes.publish = (packet, client, done) => {
      const callback = typeof client === 'function' ? client : done;
      if (routed.delete(packet)) return callback?.();
      publish(packet, typeof client === 'function' ? null : client, callback);
    };
    const routeThenAcknowledge = async (client: Client, packet: AedesPublishPacket, callback: (err?: Error | null) => void) => {
      const patient = isBridge(client);
      for (;;) {
        if (!(await this.whenAvailable(patient ? Infinity : rules.holdMs))) return refuse(this.#reason);
        const outages = this.#outages;
        const err = await new Promise<Error | null | undefined>((resolve) => publish(packet, client, resolve));
        if (!err && this.#outages === outages) {
          routed.add(packet);
          return callback(null);
        }
        if (!patient || this.#closed) return refuse(err?.message ?? 'Redis went away while routing');
      }
      function refuse(reason: string) {
        callback(new Error(`cluster backend unavailable: ${reason}`));
      }
    };
    const authorizePublish = aedes.authorizePublish;
    aedes.authorizePublish = (client, packet, callback) => {
      if (client !== null && (client as unknown as { will?: unknown }).will === packet) {
        // The will of a client of ours that is closing: not if the client already connected to another node.
        void this.#connectedElsewhere(client.id).then((elsewhere) => {
          if (!elsewhere) return authorizePublish(client, packet, callback);
          this.#log.info({ clientId: client.id, topic: packet.topic }, 'client reconnected to another node: its will here is dropped');
          callback(new Error('client taken over by another node'));
        });
        return;
      }
      authorizePublish(client, packet, (err) => {
        if (err || client === null || packet.qos !== 1 || packet.messageId === undefined) return callback(err);
        void routeThenAcknowledge(client, packet, (refused) => {
          if (refused) {
            this.emit('unacknowledged', client.id, refused.message);
            this.#log.warn({ event: 'unacknowledged', clientId: client.id, topic: packet.topic, reason: refused.message }, 'QoS 1 publish not acknowledged: closing the connection');
          }
          callback(refused);
        });
      });
    };

    // After the broker's own check (rights, subscription QoS): the cluster rule narrows it further.
    const authorizeForward = aedes.authorizeForward;
    aedes.authorizeForward = (client, packet) => {
      const forwarded = authorizeForward(client, packet);
      if (!forwarded || packet.brokerId === aedes.id || !rules.localOnly(packet.topic) || !isBridge(client)) return forwarded;
      return null;
    };
  }

  /**
   * Whether another live node holds a will for this client ID, i.e. the client connected there (Aedes stores the
   * will before it takes the ID over). Reads aedes-persistence-redis's key layout, `will:{brokerId}:{clientId}`.
   */
  async #connectedElsewhere(clientId: string): Promise<boolean> {
    const own = this.#aedes?.id;
    const others = Object.keys(this.#aedes?.brokers ?? {}).filter((id) => id !== own);
    if (others.length === 0 || !this.#available) return false;
    try {
      // One key per command: in a Redis Cluster the keys live in different slots (a multi-key EXISTS is CROSSSLOT).
      const found = await Promise.all(others.map((id) => this.#db.exists(`will:${id}:${clientId}`)));
      return found.some((n) => n > 0);
    } catch {
      return false;
    }
  }

  #probe(): void {
    if (this.#closed || this.#aedes === undefined) return;
    const emit = (this.#aedes as unknown as { mq: { emit: (packet: unknown, cb: (err?: Error) => void) => void } }).mq.emit;
    emit.call((this.#aedes as unknown as { mq: unknown }).mq, { topic: this.#probeTopic, payload: randomBytes(4) }, () => {});
  }

  #down(reason: string): void {
    if (this.#closed) return;
    this.#reason = reason;
    this.#proven = false;
    if (!this.#available) return;
    this.#available = false;
    this.#outages++;
    // Aedes forgets nodes unheard for 3 heartbeats, which an outage makes of all of them: remember who was there.
    this.#peersBefore = Object.keys(this.#aedes?.brokers ?? {});
    this.#downSince = performance.now();
    this.#log.warn({ event: 'cluster_unavailable', reason }, 'cluster backend unavailable: refusing new connections');
    this.emit('unavailable', reason);
  }

  #sayReady(): void {
    const aedes = this.#aedes as unknown as { id: string; mq: { emit: (packet: unknown, cb: () => void) => void } } | undefined;
    aedes?.mq.emit({ topic: READY_TOPIC.replace('+', aedes.id), payload: Buffer.from(aedes.id) }, () => {});
  }

  /** Available once this node's own loop is proven and the live nodes said ready since (see attach). */
  #maybeUp(): void {
    if (this.#available || !this.#proven || this.#closed || this.#aedes === undefined) return;
    const own = this.#aedes.id;
    const peers = [...new Set([...Object.keys(this.#aedes.brokers), ...this.#peersBefore])].filter((id) => id !== own);
    const settled = peers.every((id) => (this.#readyAt.get(id) ?? 0) >= this.#provenAt);
    if (!settled && Date.now() - this.#provenAt < 3 * this.#heartbeatMs) {
      this.#reason = `waiting for ${peers.filter((id) => (this.#readyAt.get(id) ?? 0) < this.#provenAt).join(', ')} to be back on Redis`;
      return;
    }
    this.#up();
  }

  #up(): void {
    const aedes = this.#aedes;
    if (aedes === undefined) return;
    this.#available = true;
    // Every node went unheard during the outage: count them alive from now, so none is taken for dead before it
    // had 3 heartbeats' time to be heard again.
    const brokers = aedes.brokers as Record<string, number>;
    const now = Date.now();
    for (const id of Object.keys(brokers)) brokers[id] = now;
    this.#graceUntil = now + 4 * this.#heartbeatMs;
    const outageMs = Math.round(performance.now() - this.#downSince);
    this.#log.info({ event: 'cluster_available', outageMs, url: this.url }, 'cluster backend available');
    this.emit('available');
    void this.#checkEpoch();
  }

  async #checkEpoch(): Promise<void> {
    try {
      await this.#db.set(EPOCH_KEY, randomBytes(8).toString('hex'), 'NX');
      const current = (await this.#db.get(EPOCH_KEY)) ?? undefined;
      const first = this.#epoch === undefined;
      this.#epoch = current;
      if (first || this.#closed) return;
      if (current !== this.#epochSeen) {
        this.#log.warn({ event: 'cluster_reset' }, 'Redis came back without the cluster state: clients reconnect to publish it again');
        this.emit('reset');
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'cluster epoch check failed');
    } finally {
      this.#epochSeen = this.#epoch;
    }
  }

  #epochSeen: string | undefined;

  /**
   * Wraps the persistence's will stream that Aedes sweeps every 4 heartbeats: never this node's own wills, nothing
   * while Redis is away or just back, and a dead node's will is deleted instead of published when its client has
   * a will on a live node (it reconnected there).
   */
  #guardWills(broker: Broker): void {
    const aedes = broker.aedes;
    const persistence = this.persistence as WillPersistence;
    const original = persistence.streamWill.bind(persistence);
    const backend = this;
    persistence.streamWill = async function* guardedStreamWill(brokers) {
      if (!backend.#sweepAllowed()) return;
      const outages = backend.#outages;
      const alive: Record<string, number> = { ...brokers, [aedes.id]: Date.now() };
      const all: Will[] = [];
      for await (const will of original(undefined)) all.push(will);
      if (backend.#outages !== outages || !backend.#sweepAllowed()) return;
      const moved = new Set(all.filter((w) => alive[w.brokerId] !== undefined).map((w) => w.clientId));
      for (const will of all) {
        if (alive[will.brokerId] !== undefined) continue;
        if (!broker.willAllowedWithoutClient(will as Will & { topic: string; retain: boolean })) {
          backend.#log.warn({ event: 'denied', action: 'will', clientId: will.clientId, deadNode: will.brokerId }, 'dead node: a will outside its client\'s topics dropped');
          await persistence.delWill({ id: will.clientId, brokerId: will.brokerId });
          continue;
        }
        if (moved.has(will.clientId)) {
          backend.#log.info({ clientId: will.clientId, deadNode: will.brokerId }, 'dead node: client already reconnected elsewhere, its old will dropped');
          await persistence.delWill({ id: will.clientId, brokerId: will.brokerId });
          continue;
        }
        backend.#log.info({ clientId: will.clientId, deadNode: will.brokerId }, 'dead node: publishing its client\'s will');
        yield will;
      }
    };
  }

  #sweepAllowed(): boolean {
    return this.#available && Date.now() >= this.#graceUntil;
  }
}

/**
 * A Redis Cluster keeps the order of one node's PUBLISHes only if they all go through the same cluster node (one
 * cluster-bus link to each other node). ioredis sends a PUBLISH (it has no key) to a random node: a camera's
 * candidate then overtook its offer (the answerer refused it as TALI_ERR_UNKNOWN_SESSION and the camera opened a new
 * session; test/cluster/redis-cluster.test.ts). Every PUBLISH of this connection is routed as if its key were in one
 * slot chosen at random per process: to that slot's primary, and after a failover to its promoted replica (ioredis
 * retries a command whose node went, in order, once the slots are refreshed).
 */
function publishInOrder(conn: Cluster): void {
  const slot = randomInt(16384);
  const sendCommand = conn.sendCommand.bind(conn) as (command: { name: string; getSlot: () => number | null }, ...rest: unknown[]) => unknown;
  (conn as unknown as { sendCommand: typeof sendCommand }).sendCommand = (command, ...rest) => {
    if (command.name === 'publish') command.getSlot = () => slot;
    return sendCommand(command, ...rest);
  };
}

const EPOCH_KEY = 'tali:cluster:epoch';
const READY_TOPIC = '$SYS/+/tali/ready';

/**
 * One ioredis connection to the target (docs/cluster.md). Through Sentinel, ioredis asks the sentinels for the
 * primary's address at each (re)connection and checks the server it reached is a primary (a demoted one is left, and
 * the sentinels asked again), so a failover looks like a short outage to everything above: the probe proves the new
 * primary before the node is available again. A Redis Cluster client routes each command to its slot's primary and
 * retries those of a lost primary until its replica took over; aedes-persistence-redis then runs in its cluster mode.
 */
function connectTo(target: RedisTarget, options: RedisOptions): Redis | Cluster {
  if (target.kind === 'server') return new Redis(target.url, options);
  if (target.kind === 'cluster') {
    // A node's connection is not retried by itself (ioredis's cluster default): commands queued for a dead primary
    // would wait for it for ever. The cluster moves them to the promoted replica when the slots are refreshed.
    const { retryStrategy: _nodesDoNotRetry, ...nodeOptions } = options;
    return new Cluster(
      target.nodes.map(({ host, port }) => ({ host, port })),
      {
        redisOptions: {
          ...nodeOptions,
          ...(target.username !== undefined && { username: target.username }),
          ...(target.password !== undefined && { password: target.password }),
        },
        clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
        // A command for a lost primary's slots is tried again every 200 ms, 100 times (~20 s): longer than a
        // failover takes (cluster-node-timeout plus the replicas' election), then it fails into Aedes's error path.
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        maxRedirections: 100,
      },
    );
  }
  return new Redis({
    ...options,
    sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
    name: target.name,
    db: target.db,
    ...(target.username !== undefined && { username: target.username }),
    ...(target.password !== undefined && { password: target.password }),
    ...(target.sentinelUsername !== undefined && { sentinelUsername: target.sentinelUsername }),
    ...(target.sentinelPassword !== undefined && { sentinelPassword: target.sentinelPassword }),
    // With no sentinel answering, ask them again (every ≤ 1 s) for as long as it takes, like the primary itself.
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    // A primary demoted while still reachable (a healed partition, SENTINEL FAILOVER) keeps its connections open:
    // ioredis then listens for the sentinels' +switch-master and reconnects to the new primary at once, and a write
    // refused as READONLY by a demoted primary reconnects too (the command is sent again to the new one).
    failoverDetector: true,
    sentinelMaxConnections: 3,
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  });
}
