/**
 * Stored sessions (CleanSession 0): what Aedes keeps for a client ID between connections, held to the rights of the
 * identity that owns it and to limits. Works on any Aedes persistence (aedes-persistence's memory store, or
 * aedes-persistence-redis in cluster mode) by wrapping its methods in place, as ./retained-index.ts does.
 *
 * What Aedes 1.2 gets wrong here, and what this module does instead (docs/security.md, "Aedes bugs worked around"):
 *
 *  - lib/handlers/subscribe.js:134 (storeSubscriptions) stores every filter of a SUBSCRIBE packet, the refused ones
 *    included, once any one of them is granted; messages for a refused `#` were then queued for the client and
 *    delivered on its next connect. Here a filter is stored only if the client's identity may subscribe to it.
 *  - lib/handlers/connect.js:206 (restoreSubs) answers Session Present from the stored subscriptions alone: a
 *    session without subscriptions resumes with Session Present 0 (MQTT-3.2.2-2). Here a session exists from its
 *    first CleanSession 0 CONNECT until a CleanSession 1 CONNECT, its expiry or its owner's removal (`resume`).
 *  - lib/handlers/connect.js:258 (emptyQueue) resends unacknowledged QoS 1 messages with the DUP flag they were
 *    published with, usually 0 (MQTT-3.3.1-1, aedes#601). Here a message that was sent before (it got a packet
 *    identifier) comes out of the store with DUP 1, one never sent with DUP 0.
 *  - lib/client.js:154 clears a refused delivery from the queue by its packet identifier, which a live message does
 *    not have yet: the memory store then removes the first queued message without one, another message. Here a
 *    clear without an identifier does nothing (the refused message was never queued: see `#admit`).
 *  - aedes.js:361 (enqueueOffline) queues for stored subscriptions without a bound (aedes#1087). Here each session
 *    holds at most maxQueuedMessages messages and maxQueuedBytes payload bytes (further ones are not stored, as
 *    Mosquitto's max_queued_messages), all sessions of the node at most maxQueuedBytesTotal, each identity at most
 *    maxStoredSessions sessions and the node maxSessionsTotal (its maxConnections), and a session whose client has
 *    been away sessionExpiryS is dropped.
 *
 * A session belongs to the identity that created it (role, ID, credential stamp, token scope). Another one resuming
 * it (a re-keyed camera, a token with another scope, a user registered again under a removed name) starts afresh:
 * nothing stored under the old rights is delivered under the new ones. Every delivery is checked again anyway
 * (Broker's authorizeForward); this keeps the store from holding what could never be delivered.
 *
 * In cluster mode each node knows the sessions of the clients that connected to it; another node's sessions are
 * "foreign" here: this node counts and bounds what it queues for them, and the node that holds them expires them.
 *
 *   (none) ──CONNECT clean 0──► online ──connection gone──► offline ──sessionExpiryS──► (wiped)
 *                                 ▲                           │
 *                                 └──────CONNECT clean 0──────┘   CONNECT clean 1, owner removed/changed: wiped
 */
import { Readable } from 'node:stream';
import type { Identity } from '../security/identity.ts';

export interface SessionLimits {
  /** QoS 1 messages one session holds (queued while away, or sent and not acknowledged). */
  maxQueuedMessages: number;
  /** Payload bytes of those messages. */
  maxQueuedBytes: number;
  /** Seconds a session is kept after its client left. */
  sessionExpiryS: number;
  /** Stored sessions one identity may hold; a new one drops its oldest offline one. */
  maxStoredSessions: number;
  /** Stored sessions on this node in all (the broker passes maxConnections); a new one drops the oldest offline one. */
  maxSessionsTotal: number;
  /** Payload bytes of all sessions' messages on this node: past it, nothing more is stored for anyone. */
  maxQueuedBytesTotal: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  maxQueuedMessages: 1000,
  maxQueuedBytes: 1_048_576,
  sessionExpiryS: 3600,
  maxStoredSessions: 8,
  maxSessionsTotal: 5000,
  maxQueuedBytesTotal: 268_435_456,
};

interface ClientRef {
  id: string;
}

interface QueuedPacket {
  topic: string;
  payload: Buffer;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number | null;
  dup?: boolean;
}

interface Sub {
  topic: string;
  qos: number;
}

/** The part of the Aedes persistence interface (aedes-persistence 11) that holds sessions. */
export interface SessionPersistence {
  addSubscriptions(client: ClientRef, subs: Sub[]): Promise<void>;
  subscriptionsByClient(client: ClientRef): Promise<Sub[]>;
  removeSubscriptions(client: ClientRef, topics: string[]): Promise<void>;
  cleanSubscriptions(client: ClientRef): Promise<void>;
  outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: QueuedPacket): Promise<void>;
  outgoingUpdate(client: ClientRef, packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(client: ClientRef, packet: { messageId?: number | null }): Promise<QueuedPacket | undefined>;
  outgoingStream(client: ClientRef): Readable | AsyncIterable<QueuedPacket>;
  cleanIncoming?(client: ClientRef): Promise<void>;
}

export interface StoredSessionsOptions {
  limits: SessionLimits;
  /** Cluster mode: sessions of other nodes' clients exist in the shared store. */
  shared: boolean;
  /** The identity of a live Aedes client (undefined for a bare `{ id }`). */
  identityOf: (client: ClientRef) => Identity | undefined;
  maySubscribe: (identity: Identity, clientId: string, filter: string) => boolean;
  mayReceive: (identity: Identity, clientId: string, topic: string) => boolean;
  /** A limit kept a message out of a session. */
  onLimit: (limit: 'maxQueuedMessages' | 'maxQueuedBytes' | 'maxQueuedBytesTotal', fields: Record<string, unknown>) => void;
  /** A session was dropped (expiry, another owner, too many, owner removed). */
  onDropped: (clientId: string, reason: string) => void;
  /** Embedded with persistence: told who owns each session and when its client left, to restore them after a restart. */
  journal?: SessionJournal | undefined;
}

export interface SessionJournal {
  saved(clientId: string, owner: Identity, online: boolean): void;
  deleted(clientId: string): void;
}

/** A session read back after a restart (./state-db.ts). */
export interface RestoredSession {
  clientId: string;
  owner: Identity;
  /** ms since the epoch when its client left (for one connected when the last run ended: when that run ended). */
  leftAt: number;
  messages: number;
  bytes: number;
}

interface Session {
  /** Undefined for a foreign session (cluster): only what this node queued for it is known. */
  owner: Identity | undefined;
  ownerKey: string;
  /** The live client holding it, if any. */
  holder: object | undefined;
  /** performance.now() when it was last held or, foreign, last queued for. */
  leftAt: number;
  messages: number;
  bytes: number;
  /** Being wiped: nothing more is queued for it. */
  closing: boolean;
}

/** The identity a session belongs to, with the rights it was created under. */
function ownerKey(identity: Identity): string {
  return JSON.stringify([identity.role, identity.id, identity.source ?? '', identity.credential ?? '', identity.devices ?? '*']);
}

function identityKey(identity: Identity): string {
  return `${identity.role}:${identity.id}`;
}

export class StoredSessions {
  readonly #store: SessionPersistence;
  /** The store's own methods, for wiping (no accounting, no checks). */
  readonly #raw: SessionPersistence;
  readonly #options: StoredSessionsOptions;
  readonly #sessions = new Map<string, Session>();
  /** Payload bytes queued in all sessions. */
  #bytes = 0;
  /** Client IDs of each identity's sessions ("role:id"), so a new session does not scan them all. */
  readonly #byIdentity = new Map<string, Set<string>>();
  readonly #sweep: NodeJS.Timeout;

  constructor(store: SessionPersistence, options: StoredSessionsOptions) {
    this.#store = store;
    this.#options = options;
    const raw = {} as Record<string, unknown>;
    for (const name of ['addSubscriptions', 'subscriptionsByClient', 'removeSubscriptions', 'cleanSubscriptions', 'outgoingEnqueueCombi', 'outgoingUpdate', 'outgoingClearMessageId', 'outgoingStream', 'cleanIncoming'] as const) {
      const method = store[name] as ((...args: unknown[]) => unknown) | undefined;
      if (method) raw[name] = method.bind(store);
    }
    this.#raw = raw as unknown as SessionPersistence;
    this.#wrap();
    const expiryMs = options.limits.sessionExpiryS * 1000;
    this.#sweep = setInterval(() => this.#expire(), Math.min(Math.max(expiryMs / 2, 100), 60_000)).unref();
  }

  /** Sessions known to this node (own and foreign). */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Called once a CONNECT is authenticated, before Aedes reads the stored session. CleanSession 1 ends any stored
   * session; CleanSession 0 resumes the identity's own session or starts one (a session of another owner is wiped).
   * Resolves with Session Present (MQTT-3.2.2-1..3), or undefined when this node cannot know (cluster: a session
   * stored by another node), in which case Aedes' answer stands.
   */
  async resume(clientId: string, identity: Identity, clean: boolean): Promise<boolean | undefined> {
    const key = ownerKey(identity);
    const existing = this.#sessions.get(clientId);
    if (existing?.owner !== undefined && (clean || existing.ownerKey !== key)) {
      await this.#wipe(clientId, clean ? undefined : 'resumed by another identity or under other rights');
    }
    if (clean) {
      this.#delete(clientId);
      return false;
    }
    const current = this.#sessions.get(clientId);
    if (current?.owner !== undefined) return true;
    await this.#makeRoom(identity);
    const session: Session = current ?? { owner: undefined, ownerKey: '', holder: undefined, leftAt: performance.now(), messages: 0, bytes: 0, closing: false };
    session.owner = identity;
    session.ownerKey = key;
    this.#add(clientId, session, identity);
    this.#options.journal?.saved(clientId, identity, false);
    return this.#options.shared ? undefined : false;
  }

  /**
   * Sessions of the previous run, before any client connects (their subscriptions and queues are in the store
   * already). Their expiry counts from when their clients left; an owner re-keyed or removed since is refused at
   * `resume` like any other.
   */
  restore(sessions: readonly RestoredSession[]): void {
    const nowWall = Date.now();
    const now = performance.now();
    for (const r of sessions) {
      const session: Session = { owner: r.owner, ownerKey: ownerKey(r.owner), holder: undefined, leftAt: now - Math.max(0, nowWall - r.leftAt), messages: r.messages, bytes: r.bytes, closing: false };
      this.#add(r.clientId, session, r.owner);
      this.#bytes += r.bytes;
    }
    this.#expire(); // those that expired while the node was down go now, not at the next sweep
  }

  #add(clientId: string, session: Session, owner: Identity): void {
    this.#sessions.set(clientId, session);
    const mine = this.#byIdentity.get(identityKey(owner)) ?? new Set<string>();
    mine.add(clientId);
    this.#byIdentity.set(identityKey(owner), mine);
  }

  /** A client that connected with CleanSession 0 is online (Aedes `clientReady`). */
  attach(client: ClientRef): void {
    const session = this.#sessions.get(client.id);
    if (session?.owner === undefined) return;
    session.holder = client;
    this.#options.journal?.saved(client.id, session.owner, true);
  }

  /** Its connection is gone (Aedes `clientDisconnect`): the expiry starts. */
  detach(client: ClientRef): void {
    const session = this.#sessions.get(client.id);
    if (session === undefined || session.holder !== client) return;
    session.holder = undefined;
    session.leftAt = performance.now();
    if (session.owner !== undefined) this.#options.journal?.saved(client.id, session.owner, false);
  }

  /** Cluster: the client connected to another node, which holds its session from now on. */
  movedAway(clientId: string): void {
    const session = this.#sessions.get(clientId);
    if (session !== undefined && session.holder === undefined) this.#delete(clientId);
  }

  /** Wipes every stored session whose owner matches (e.g. removed or re-keyed identities). Resolves when done. */
  async forgetWhere(predicate: (identity: Identity, clientId: string) => boolean, reason: string): Promise<void> {
    const doomed = [...this.#sessions].filter(([clientId, s]) => s.owner !== undefined && predicate(s.owner, clientId)).map(([clientId]) => clientId);
    await Promise.all(doomed.map((clientId) => this.#wipe(clientId, reason)));
  }

  /** Stops the expiry sweep. Idempotent. */
  close(): void {
    clearInterval(this.#sweep);
  }

  #wrap(): void {
    const store = this.#store;
    const raw = this.#raw;
    const options = this.#options;
    const rightsOf = (client: ClientRef) => options.identityOf(client) ?? this.#sessions.get(client.id)?.owner;

    store.addSubscriptions = async (client, subs) => {
      const identity = rightsOf(client);
      const allowed = identity === undefined ? [] : subs.filter((sub) => options.maySubscribe(identity, client.id, sub.topic));
      if (allowed.length > 0) await raw.addSubscriptions(client, allowed);
    };

    store.subscriptionsByClient = async (client) => {
      const subs = await raw.subscriptionsByClient(client);
      const session = this.#sessions.get(client.id);
      if (session?.closing) return subs;
      const identity = rightsOf(client);
      if (identity === undefined) return [];
      const denied = subs.filter((sub) => !options.maySubscribe(identity, client.id, sub.topic)).map((sub) => sub.topic);
      if (denied.length > 0) await raw.removeSubscriptions(client, denied);
      return subs.filter((sub) => !denied.includes(sub.topic));
    };

    store.outgoingEnqueueCombi = async (subs, packet) => {
      const size = packet.payload?.length ?? 0;
      const admitted = subs.filter((sub) => this.#admit(sub.clientId, packet.topic, size));
      if (admitted.length > 0) await raw.outgoingEnqueueCombi(admitted, packet);
    };
    store.outgoingEnqueue = (sub, packet) => store.outgoingEnqueueCombi([sub], packet);

    store.outgoingClearMessageId = async (client, packet) => {
      if (packet.messageId === undefined || packet.messageId === null) return undefined;
      const removed = await raw.outgoingClearMessageId(client, packet);
      const session = this.#sessions.get(client.id);
      if (removed && session) {
        const size = Math.min(session.bytes, removed.payload?.length ?? 0);
        session.messages = Math.max(0, session.messages - 1);
        session.bytes -= size;
        this.#bytes -= size;
      }
      return removed;
    };

    store.outgoingUpdate = async (client, packet) => {
      try {
        await raw.outgoingUpdate(client, packet);
      } catch (err) {
        // Over a limit the message was not stored: it is still sent to a connected client, at most once.
        if ((err as Error).message !== 'no such packet') throw err;
      }
    };

    store.outgoingStream = (client) => Readable.from(markResent(raw.outgoingStream(client)));
  }

  #delete(clientId: string): void {
    const session = this.#sessions.get(clientId);
    const owner = session?.owner;
    this.#bytes -= session?.bytes ?? 0;
    this.#sessions.delete(clientId);
    if (owner === undefined) return;
    this.#options.journal?.deleted(clientId);
    const mine = this.#byIdentity.get(identityKey(owner));
    mine?.delete(clientId);
    if (mine?.size === 0) this.#byIdentity.delete(identityKey(owner));
  }

  /** Whether a message on `topic` may be queued for this session; counts it if so. */
  #admit(clientId: string, topic: string, size: number): boolean {
    let session = this.#sessions.get(clientId);
    if (session === undefined) {
      // Embedded: a subscription without a session is one being wiped. Cluster: another node's session.
      if (!this.#options.shared) return false;
      session = { owner: undefined, ownerKey: '', holder: undefined, leftAt: performance.now(), messages: 0, bytes: 0, closing: false };
      this.#sessions.set(clientId, session);
    }
    if (session.closing) return false;
    if (session.owner !== undefined && !this.#options.mayReceive(session.owner, clientId, topic)) return false;
    const { maxQueuedMessages, maxQueuedBytes, maxQueuedBytesTotal } = this.#options.limits;
    const over =
      session.messages + 1 > maxQueuedMessages
        ? 'maxQueuedMessages'
        : session.bytes + size > maxQueuedBytes
          ? 'maxQueuedBytes'
          : this.#bytes + size > maxQueuedBytesTotal
            ? 'maxQueuedBytesTotal'
            : undefined;
    if (over !== undefined) {
      this.#options.onLimit(over, { clientId, identity: session.owner?.id, role: session.owner?.role, topic, value: this.#options.limits[over] });
      return false;
    }
    session.messages++;
    session.bytes += size;
    this.#bytes += size;
    if (session.owner === undefined) session.leftAt = performance.now();
    return true;
  }

  /** A new session for `identity`: its oldest offline sessions go while it holds maxStoredSessions. */
  async #makeRoom(identity: Identity): Promise<void> {
    const mine = [...(this.#byIdentity.get(identityKey(identity)) ?? [])].flatMap((clientId) => {
      const session = this.#sessions.get(clientId);
      return session && !session.closing ? [[clientId, session] as const] : [];
    });
    const offline = mine.filter(([, s]) => s.holder === undefined).sort(([, a], [, b]) => a.leftAt - b.leftAt);
    const excess = mine.length - this.#options.limits.maxStoredSessions + 1;
    const doomed = offline.slice(0, Math.max(0, excess)).map(([clientId]) => clientId);
    await Promise.all(doomed.map((clientId) => this.#wipe(clientId, `over maxStoredSessions (${this.#options.limits.maxStoredSessions})`)));
    // And the node's total: the sessions made first go first (Map order), those of connected clients stay.
    let total = this.#sessions.size - this.#options.limits.maxSessionsTotal + 1;
    const wipes: Promise<void>[] = [];
    for (const [clientId, session] of this.#sessions) {
      if (total <= 0) break;
      if (session.holder !== undefined || session.closing) continue;
      wipes.push(this.#wipe(clientId, `over the node's ${this.#options.limits.maxSessionsTotal} stored sessions`));
      total--;
    }
    await Promise.all(wipes);
  }

  #expire(): void {
    const expiryMs = this.#options.limits.sessionExpiryS * 1000;
    const now = performance.now();
    for (const [clientId, session] of this.#sessions) {
      if (session.holder !== undefined || session.closing || now - session.leftAt < expiryMs) continue;
      if (session.owner === undefined) this.#delete(clientId);
      else void this.#wipe(clientId, `expired (${this.#options.limits.sessionExpiryS} s away)`);
    }
  }

  /**
   * Removes a session from the store: its queue first (through the store's own interface, as Aedes clears the queue
   * of a clean client: a packet identifier, then a clear by it), then its subscriptions and its QoS 2 state.
   */
  async #wipe(clientId: string, reason: string | undefined): Promise<void> {
    const session = this.#sessions.get(clientId);
    if (session?.closing) return;
    if (session) session.closing = true;
    const ref = { id: clientId };
    const raw = this.#raw;
    try {
      const queued: QueuedPacket[] = [];
      for await (const packet of raw.outgoingStream(ref)) queued.push(packet);
      const used = new Set(queued.map((p) => p.messageId).filter((id) => typeof id === 'number'));
      let free = 1;
      for (const packet of queued) {
        let id = packet.messageId;
        if (typeof id !== 'number') {
          while (used.has(free)) free++;
          id = free++;
          await raw.outgoingUpdate(ref, { ...packet, messageId: id }).catch(() => {});
        }
        await raw.outgoingClearMessageId(ref, { messageId: id });
      }
      await raw.cleanSubscriptions(ref);
      await raw.cleanIncoming?.(ref);
    } finally {
      if (this.#sessions.get(clientId) === session) this.#delete(clientId);
    }
    if (reason !== undefined) this.#options.onDropped(clientId, reason);
  }
}

/** MQTT-3.3.1-1: a message that was sent before (it has a packet identifier) goes out again with DUP 1. */
async function* markResent(source: Readable | AsyncIterable<QueuedPacket>): AsyncGenerator<QueuedPacket> {
  for await (const packet of source as AsyncIterable<QueuedPacket>) {
    yield { ...packet, dup: packet.messageId !== undefined && packet.messageId !== null };
  }
}
