/**
 * A connection as Aedes sees it, with a guard between it and the socket (TCP, TLS or WebSocket stream):
 *
 *  - framing: whole MQTT packets only, none larger than maxPacketBytes. mqtt-packet buffers a packet until its
 *    Remaining Length has arrived, so without this a client announcing 256 MB is given 256 MB (measured: 1.8 GB
 *    resident after 15 s of such clients, see docs/security.md).
 *  - the MQTT 3.1.1 rules of ./packet-rules.ts on every packet, CONNECT first (MQTT-3.1.0-1).
 *  - nothing reaches Aedes before a valid CONNECT: the broker creates its client (parser, timers, queues) only then,
 *    so garbage and half-open connections cost a socket and this object.
 *  - after CONNECT, no further byte is read until the broker calls ready() (CONNACK 0 sent): the client's pipelined
 *    packets wait in its own socket buffer, not in Aedes' pre-CONNACK queue.
 *  - an `inspect` hook sees each later packet and may drop it (a QoS 1 PUBLISH is then acknowledged here) or close
 *    the connection: rate limits live there.
 *  - outgoing bytes that the client does not read are bounded by maxBufferedBytes; past it the client is closed as
 *    too slow. Writes are never held back towards Aedes, so one client that stops reading cannot hold mqemitter's
 *    delivery slots (Aedes waits for 'drain' before completing a delivery, up to drainTimeout, 60 s by default;
 *    100 such waits stall every client).
 */
import { Duplex } from 'node:stream';
import {
  checkConnect,
  checkPacket,
  connackBytes,
  PACKET,
  pubackBytes,
  readFixedHeader,
  type ConnectFields,
  type PacketFields,
} from './packet-rules.ts';

export type GuardDecision = 'pass' | 'drop' | { close: string; limit: string };

/** Why the guard closed a connection: a clause of the spec, or a limit. */
export interface GuardRefusal {
  reason: string;
  clause?: string;
  limit?: string;
}

export interface GuardHooks {
  /** The first packet, a valid CONNECT; its bytes are queued for Aedes. Called at most once. */
  onConnect(fields: ConnectFields): void;
  /** Each later packet, before Aedes sees it. */
  inspect(fields: PacketFields): GuardDecision;
  /** The guard is closing the connection. */
  onRefused(refusal: GuardRefusal): void;
}

export interface GuardOptions {
  /** Largest whole packet (fixed header included) accepted, in bytes. */
  maxPacketBytes: number;
  /** Bytes written to the client and not yet taken by it before it is disconnected. */
  maxBufferedBytes: number;
}

type State = 'connect' | 'authenticating' | 'open' | 'closed';

const EMPTY = Buffer.alloc(0);
/** How long a refused client gets to read its CONNACK before the socket is destroyed. */
const LINGER_MS = 1000;

export class GuardedConnection extends Duplex {
  readonly raw: Duplex;
  readonly #options: GuardOptions;
  readonly #hooks: GuardHooks;
  #state: State = 'connect';
  #buf: Buffer = EMPTY;
  #wantMore = true;
  /** The socket ended; push EOF once the packets before it are through. */
  #ended = false;
  #eof = false;
  /** Bytes sent so far, while the CONNACK (the first 4) is going out. */
  #sentBefore = 0;
  #sessionPresent: boolean | undefined;

  constructor(raw: Duplex, options: GuardOptions, hooks: GuardHooks) {
    super({ allowHalfOpen: false, writableHighWaterMark: options.maxBufferedBytes });
    this.raw = raw;
    this.#options = options;
    this.#hooks = hooks;
    raw.on('data', this.#onData);
    raw.once('end', () => {
      // The client half-closed: what it sent before still goes to Aedes (a last DISCONNECT must not be lost).
      if (this.#state === 'connect') return this.destroy();
      this.#ended = true;
      this.#process();
    });
    raw.on('error', (err: Error) => this.destroy(err));
    raw.once('close', () => this.destroy());
  }

  /**
   * Sets the Session Present flag of the CONNACK that the broker is about to send (MQTT-3.2.2-2): Aedes derives it
   * from stored subscriptions only (see ./stored-sessions.ts). Call before the CONNACK is written.
   */
  presentSession(present: boolean): void {
    this.#sessionPresent = present;
  }

  /** CONNACK 0 was sent: let the client's next packets through. */
  ready(): void {
    if (this.#state !== 'authenticating') return;
    this.#state = 'open';
    this.#process();
  }

  override _read(): void {
    this.#wantMore = true;
    this.#process();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#send(chunk);
    callback();
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    this.#send(chunks.length === 1 ? (chunks[0] as { chunk: Buffer }).chunk : Buffer.concat(chunks.map((c) => c.chunk)));
    callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.raw.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#state = 'closed';
    this.#buf = EMPTY;
    this.raw.off('data', this.#onData);
    this.raw.destroy();
    callback(err);
  }

  #send(chunk: Buffer): void {
    if (this.#state === 'closed' || this.raw.destroyed) return;
    if (this.#sentBefore < 4) chunk = this.#patchConnack(chunk);
    this.raw.write(chunk);
    if (this.raw.writableLength > this.#options.maxBufferedBytes) {
      this.#refuse({ limit: 'maxClientBufferBytes', reason: `client is not reading: ${this.raw.writableLength} bytes waiting` });
    }
  }

  /** The first packet a server sends is its CONNACK (MQTT-3.2.0-1): 0x20 0x02 flags return-code. */
  #patchConnack(chunk: Buffer): Buffer {
    const at = 2 - this.#sentBefore;
    this.#sentBefore += chunk.length;
    if (this.#sessionPresent === undefined || at < 0 || at >= chunk.length) return chunk;
    const patched = Buffer.from(chunk);
    patched[at] = this.#sessionPresent ? 0x01 : 0x00;
    return patched;
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#state === 'closed') return;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    this.#process();
  };

  #process(): void {
    while (!this.#eof && (this.#state === 'connect' || (this.#state === 'open' && this.#wantMore))) {
      const header = readFixedHeader(this.#buf);
      if (header === 'incomplete') break;
      if (header === 'malformed') return this.#refuse({ clause: 'MQTT-2.2.3', reason: 'Remaining Length longer than 4 bytes' });
      if (this.#state === 'connect' && header.type !== PACKET.CONNECT) {
        return this.#refuse({ clause: 'MQTT-3.1.0-1', reason: `first packet is type ${header.type}, not CONNECT` });
      }
      const total = header.headerBytes + header.remaining;
      if (total > this.#options.maxPacketBytes) {
        return this.#refuse({ limit: 'maxPacketBytes', reason: `packet of ${total} bytes (type ${header.type}); limit ${this.#options.maxPacketBytes}` });
      }
      if (this.#buf.length < total) break;
      const bytes = this.#buf.subarray(0, total);
      const body = bytes.subarray(header.headerBytes);
      this.#buf = this.#buf.length === total ? EMPTY : this.#buf.subarray(total);

      if (this.#state === 'connect') {
        const connect = checkConnect(header.flags, body);
        if (!connect.ok) return this.#refuse(connect, connect.connack);
        this.#state = 'authenticating';
        this.push(bytes);
        this.#hooks.onConnect(connect);
        break;
      }
      const fields = checkPacket(header.type, header.flags, body);
      if (!fields.ok) return this.#refuse(fields);
      const decision = this.#hooks.inspect(fields);
      if (decision === 'drop') {
        if (fields.qos === 2) return this.#refuse({ limit: 'publishRate', reason: 'QoS 2 PUBLISH over the rate limit' });
        // The client must not resend what was dropped on purpose: acknowledge a QoS 1 PUBLISH here (MQTT-4.3.2).
        if (fields.qos === 1) this.#send(pubackBytes(fields.packetId));
        continue;
      }
      if (decision !== 'pass') return this.#refuse({ limit: decision.limit, reason: decision.close });
      if (!this.push(bytes)) this.#wantMore = false;
    }
    if (this.#state === 'closed') return;
    if (this.#ended) {
      // Whatever is left is at most a partial packet, which can no longer complete.
      if (this.#state === 'open' && this.#wantMore && !this.#eof) {
        this.#eof = true;
        this.#buf = EMPTY;
        this.push(null);
      }
      return;
    }
    // Read from the socket only while a packet is incomplete and someone wants it; otherwise let TCP push back.
    const reading = this.#state === 'connect' || (this.#state === 'open' && this.#wantMore);
    if (reading) this.raw.resume();
    else this.raw.pause();
  }

  #refuse(refusal: GuardRefusal, connack?: number): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#buf = EMPTY;
    this.#hooks.onRefused({ reason: refusal.reason, ...(refusal.clause && { clause: refusal.clause }), ...(refusal.limit && { limit: refusal.limit }) });
    if (connack === undefined) {
      this.destroy();
      return;
    }
    // MQTT-3.1.3-9, MQTT-3.2.2-5: the refusal's CONNACK, then close. Whatever the client sends meanwhile is dropped.
    this.raw.off('data', this.#onData);
    this.raw.resume();
    this.raw.end(connackBytes(connack));
    setTimeout(() => this.destroy(), LINGER_MS).unref();
  }
}
