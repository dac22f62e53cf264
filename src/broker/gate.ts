/**
 * The gate in front of Aedes for every connection from outside (TCP, TLS, WebSocket): admission limits at accept,
 * a guard on the byte stream (./guarded-connection.ts), a deadline to CONNACK, a message rate per client, and a
 * token's expiry. It owns what those need per connection; the Broker keeps identities and the Aedes hooks.
 *
 * Every limit that trips and every packet refused by an MQTT rule is counted (`counters`) and logged with address
 * and identity, throttled under a flood (./log-throttle.ts).
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { encodeForDevice } from '../protocol/codec.ts';
import { ProtocolError, toErrorMessage } from '../protocol/errors.ts';
import type { Identity } from '../security/identity.ts';
import { Admission, type AdmissionLimits, type Ticket } from './admission.ts';
import { GuardedConnection, type GuardDecision, type GuardRefusal } from './guarded-connection.ts';
import { LogThrottle } from './log-throttle.ts';
import { connackBytes, PACKET, type PacketFields } from './packet-rules.ts';
import { BucketsByIdentity, type TokenBucket } from '../security/token-bucket.ts';

/** Every limit the broker enforces on clients; the bridge passes the config options of the same names. */
export interface BrokerLimits extends AdmissionLimits {
  /** Largest MQTT packet a client may send, fixed header included. */
  maxPacketBytes: number;
  /** Bytes waiting to be sent to one client before it is disconnected as too slow. */
  maxClientBufferBytes: number;
  /** PUBLISH, SUBSCRIBE and UNSUBSCRIBE packets per second per client (the token bucket's refill). */
  publishRate: number;
  /**
   * Packets a client may send at once above the rate; also how many may be dropped within about a second before it
   * is closed (drops count down at publishBurst a second).
   */
  publishBurst: number;
}

/** SUBSCRIBE/UNSUBSCRIBE packets a connection may send when its identity's bucket is empty (a reconnect needs 1–3). */
const FREE_SUBSCRIBES = 8;

export const DEFAULT_LIMITS: BrokerLimits = {
  maxPacketBytes: 65_536,
  maxClientBufferBytes: 1_048_576,
  maxConnections: 5000,
  maxConnectionsPerAddress: 256,
  maxPendingConnections: 256,
  maxPendingConnectionsPerAddress: 32,
  publishRate: 20,
  publishBurst: 50,
};

/** Limits that tripped and MQTT rules that refused a packet, by name, since start: for metrics and tests. */
export interface GateCounters {
  limits: Record<string, number>;
  refusals: Record<string, number>;
}

export interface GateOptions {
  limits: BrokerLimits;
  /** Milliseconds from accept to CONNACK 0 (CONNECT received and authenticated). */
  connectTimeoutMs: number;
  logger: Logger;
  /** The identity the broker authenticated on this connection, if any yet. */
  identityOf: (conn: GuardedConnection) => Identity | undefined;
  /** Tells a client it is over the rate limit (an `error` on its own down topic). */
  notifyRateLimited: (identity: Identity) => void;
  /** A message was dropped over the rate limit (counted as a TALI_ERR_RATE_LIMITED refusal). */
  onRateLimited: (identity: Identity | undefined) => void;
}

interface GateState {
  address: string;
  transport: string;
  ticket: Ticket;
  /** Shared by the identity's connections, from CONNACK on. */
  bucket: TokenBucket | undefined;
  releaseBucket: () => void;
  /**
   * Packets dropped over the rate limit, counting down at publishBurst a second (at `dropsAt`). A client that keeps
   * sending faster than publishRate + publishBurst a second passes publishBurst and is closed, however its sends
   * interleave with the bucket's refills.
   */
  drops: number;
  dropsAt: number;
  /** When the client was last told it is over the rate (performance.now()). */
  noticedAt: number;
  /** SUBSCRIBE/UNSUBSCRIBE let through on an empty bucket on this connection. */
  subscribesOverRate: number;
  /** Until CONNACK: the connect deadline. After: the token's expiry, if any. */
  timer: NodeJS.Timeout | undefined;
}

export class ConnectionGate {
  readonly counters: GateCounters = { limits: {}, refusals: {} };
  readonly #options: GateOptions;
  readonly #admission: Admission;
  readonly #log: LogThrottle;
  readonly #states = new WeakMap<GuardedConnection, GateState>();
  readonly #buckets: BucketsByIdentity;

  constructor(options: GateOptions) {
    this.#options = options;
    this.#buckets = new BucketsByIdentity(options.limits.publishRate, options.limits.publishBurst);
    this.#admission = new Admission(options.limits);
    this.#log = new LogThrottle(options.logger);
  }

  /** Connections admitted (including those that have not completed CONNECT yet, `pending`). */
  get connections(): { total: number; pending: number } {
    return { total: this.#admission.total, pending: this.#admission.pending };
  }

  /**
   * Admits a new connection (or refuses it with CONNACK 0x03) and returns the guarded connection that Aedes will
   * get once it sends a valid CONNECT; undefined when refused.
   */
  accept(stream: Duplex, transport: string, address: string, handle: (conn: GuardedConnection) => void): GuardedConnection | undefined {
    const admitted = this.#admission.admit(address);
    if (!admitted.ok) {
      this.trip(admitted.limit, { address, transport, value: admitted.value }, 'connection refused: limit reached');
      refuseAtAccept(stream);
      return undefined;
    }
    const { limits, connectTimeoutMs } = this.#options;
    const state: GateState = {
      address,
      transport,
      ticket: admitted.ticket,
      bucket: undefined,
      releaseBucket: () => {},
      drops: 0,
      dropsAt: 0,
      noticedAt: 0,
      subscribesOverRate: 0,
      timer: undefined,
    };
    const conn = new GuardedConnection(
      stream,
      { maxPacketBytes: limits.maxPacketBytes, maxBufferedBytes: limits.maxClientBufferBytes },
      {
        onConnect: () => handle(conn),
        inspect: (fields) => this.#inspect(conn, state, fields),
        onRefused: (refusal) => this.#refused(conn, state, refusal),
      },
    );
    this.#states.set(conn, state);
    state.timer = setTimeout(() => {
      this.trip('connectTimeoutMs', { address, transport, value: connectTimeoutMs }, 'no CONNACK in time: connection closed');
      conn.destroy();
    }, connectTimeoutMs);
    conn.once('close', () => {
      clearTimeout(state.timer);
      state.ticket.release();
      state.releaseBucket();
    });
    // A reset or TLS error on the socket is the client's problem: the guard turns it into a close.
    conn.on('error', () => {});
    return conn;
  }

  /**
   * CONNACK 0 went out: the connection is no longer pending, the guard lets the client's packets through, and a
   * token login is closed when the token expires (MQTT 3.1.1 cannot re-authenticate a live connection; the client
   * reconnects with a fresh token, see docs/security.md).
   */
  ready(conn: GuardedConnection, onExpired: () => void): void {
    const state = this.#states.get(conn);
    if (state === undefined) return;
    clearTimeout(state.timer);
    state.timer = undefined;
    state.ticket.ready();
    const identity = this.#options.identityOf(conn);
    // Per identity, not per connection: a client that reconnects does not get a fresh burst.
    const held = this.#buckets.acquire(identity ? `${identity.role}:${identity.id}` : `address:${state.address}`);
    state.bucket = held.bucket;
    state.releaseBucket = held.release;
    conn.ready();
    const expiresAt = identity?.expiresAt;
    if (expiresAt === undefined) return;
    state.timer = setTimeout(() => {
      this.#options.logger.info(
        { event: 'token_expired', identity: identity?.id, address: state.address, transport: state.transport },
        'token expired: client disconnected',
      );
      onExpired();
    }, Math.min(Math.max(0, expiresAt - Date.now()), 2 ** 31 - 1));
  }

  /** Logs what the throttle still holds. Connections close with the broker. Idempotent. */
  close(): void {
    this.#log.close();
  }

  /** The rate limit: PUBLISH, SUBSCRIBE and UNSUBSCRIBE take a token each; acknowledgements and pings are free. */
  #inspect(conn: GuardedConnection, state: GateState, fields: PacketFields): GuardDecision {
    const counted = fields.type === PACKET.PUBLISH || fields.type === PACKET.SUBSCRIBE || fields.type === PACKET.UNSUBSCRIBE;
    if (!counted || state.bucket === undefined || state.bucket.take()) return 'pass';
    const { publishRate, publishBurst } = this.#options.limits;
    const now = performance.now();
    state.drops = Math.max(0, state.drops - ((now - state.dropsAt) / 1000) * publishBurst) + 1;
    state.dropsAt = now;
    const identity = this.#options.identityOf(conn);
    const who = { address: state.address, transport: state.transport, role: identity?.role, identity: identity?.id };
    // A dropped SUBSCRIBE could only be answered with a lie (a SUBACK for nothing); a flood past the burst is no
    // longer a client that briefly went too fast.
    if (fields.type !== PACKET.PUBLISH) {
      // Subscribing is what a reconnecting client does first: a few are let through on an empty bucket.
      if (++state.subscribesOverRate <= FREE_SUBSCRIBES) return 'pass';
    }
    if (fields.type !== PACKET.PUBLISH || state.drops > publishBurst) {
      return { close: `over ${publishRate} messages/s (more than ${publishBurst} dropped within a second)`, limit: 'publishRate' };
    }
    this.trip('publishRate', { ...who, value: publishRate, topic: fields.topic }, 'over the message rate: message dropped');
    this.#options.onRateLimited(identity);
    if (identity !== undefined && now - state.noticedAt >= 1000) {
      // At most one notice per second: the refusal must not become an amplifier.
      state.noticedAt = now;
      this.#options.notifyRateLimited(identity);
    }
    return 'drop';
  }

  #refused(conn: GuardedConnection, state: GateState, refusal: GuardRefusal): void {
    const identity = this.#options.identityOf(conn);
    const fields = { address: state.address, transport: state.transport, role: identity?.role, identity: identity?.id, reason: refusal.reason };
    if (refusal.limit !== undefined) {
      this.trip(refusal.limit, fields, 'limit exceeded: connection closed');
      return;
    }
    const clause = refusal.clause ?? 'MQTT';
    this.counters.refusals[clause] = (this.counters.refusals[clause] ?? 0) + 1;
    this.#log.warn('refused', { event: 'refused', clause, ...fields }, `${clause}: connection closed`);
  }

  /** Counts a tripped limit and logs it (throttled). */
  trip(limit: string, fields: Record<string, unknown>, message: string): void {
    this.counters.limits[limit] = (this.counters.limits[limit] ?? 0) + 1;
    this.#log.warn('limit', { event: 'limit', limit, ...fields }, message);
  }
}

/**
 * Over a connection limit, before any byte is read: CONNACK 0x03 "server unavailable" (MQTT §3.2.2.3) goes out
 * ahead of the client's CONNECT, which a client reads as a clear refusal; then the socket closes. Its CONNECT, when
 * it arrives, is discarded.
 */
function refuseAtAccept(stream: Duplex): void {
  stream.on('error', () => {});
  // Under a flood, lingering refusals would themselves hold sockets: past a thousand, close at once.
  if (lingering >= MAX_LINGERING) {
    stream.destroy();
    return;
  }
  lingering++;
  stream.resume();
  stream.end(connackBytes(3));
  const timer = setTimeout(() => stream.destroy(), 1000).unref();
  stream.once('close', () => {
    clearTimeout(timer);
    lingering--;
  });
}

const MAX_LINGERING = 1000;
let lingering = 0;

/** The `error` a client over the rate limit gets on its own down topic (protocol §11, TALI_ERR_RATE_LIMITED). */
export function rateLimitedPayload(ratePerS: number): string {
  const error = new ProtocolError('TALI_ERR_RATE_LIMITED', `over ${ratePerS} messages/s: messages are being dropped`);
  return encodeForDevice(toErrorMessage(error, Date.now()));
}
