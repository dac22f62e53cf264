/**
 * MQTT 3.1.1 at the byte level, for tests that must send what no well-behaved client library would: U+0000 in a
 * topic, a wrong flag bit, a truncated frame, a remaining length of 256 MB. Packets are built field by field
 * (MQTT §2, §3), and a RawConnection reads back the broker's replies as raw packets.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { WebSocket } from 'ws';
import { withTimeout } from './wait.ts';

export const TYPE = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

/** Remaining Length, MQTT §2.2.3: 7 bits per byte, continuation bit 0x80. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** A UTF-8 string (or raw bytes) with its two-byte length prefix, MQTT §1.5.3. */
export function str(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

export function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function packet(type: number, flags: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(type << 4) | flags]), varint(body.length), body]);
}

export interface ConnectFields {
  clientId?: string | Buffer;
  clean?: boolean;
  keepalive?: number;
  will?: { topic: string | Buffer; payload?: Buffer | string; qos?: number; retain?: boolean };
  username?: string | Buffer;
  password?: string | Buffer;
  /** Set extra bits in the connect flags byte (e.g. 0x01, the reserved bit). */
  extraFlags?: number;
  protocolName?: string;
  protocolLevel?: number;
}

export function connectPacket(f: ConnectFields = {}): Buffer {
  let flags = f.extraFlags ?? 0;
  if (f.clean ?? true) flags |= 0x02;
  if (f.will) flags |= 0x04 | ((f.will.qos ?? 0) << 3) | (f.will.retain ? 0x20 : 0);
  if (f.password !== undefined) flags |= 0x40;
  if (f.username !== undefined) flags |= 0x80;
  const parts = [str(f.protocolName ?? 'MQTT'), Buffer.from([f.protocolLevel ?? 4, flags]), u16(f.keepalive ?? 30), str(f.clientId ?? '')];
  if (f.will) parts.push(str(f.will.topic), str(Buffer.from(f.will.payload ?? '')));
  if (f.username !== undefined) parts.push(str(f.username));
  if (f.password !== undefined) parts.push(str(typeof f.password === 'string' ? Buffer.from(f.password) : f.password));
  return packet(TYPE.CONNECT, 0, Buffer.concat(parts));
}

export function publishPacket(topic: string | Buffer, payload: string | Buffer, o: { qos?: number; retain?: boolean; id?: number; flags?: number } = {}): Buffer {
  const qos = o.qos ?? 0;
  const flags = o.flags ?? ((qos << 1) | (o.retain ? 1 : 0));
  const body = [str(topic)];
  if (qos > 0) body.push(u16(o.id ?? 1));
  body.push(Buffer.from(payload));
  return packet(TYPE.PUBLISH, flags, Buffer.concat(body));
}

export function subscribePacket(id: number, filters: [string | Buffer, number][], flags = 0x02): Buffer {
  return packet(TYPE.SUBSCRIBE, flags, Buffer.concat([u16(id), ...filters.flatMap(([f, q]) => [str(f), Buffer.from([q])])]));
}

export function unsubscribePacket(id: number, filters: (string | Buffer)[], flags = 0x02): Buffer {
  return packet(TYPE.UNSUBSCRIBE, flags, Buffer.concat([u16(id), ...filters.map((f) => str(f))]));
}

export const PINGREQ = packet(TYPE.PINGREQ, 0, Buffer.alloc(0));
export const DISCONNECT = packet(TYPE.DISCONNECT, 0, Buffer.alloc(0));

export interface RawPacket {
  type: number;
  flags: number;
  body: Buffer;
}

/** A byte-level connection over TCP, TLS or WebSocket that collects whole packets from the broker. */
export class RawConnection {
  readonly packets: RawPacket[] = [];
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  #waiters = new Set<() => void>();
  #send: (data: Buffer) => void;
  #destroy: () => void;
  #end: (data?: Buffer) => void = () => {};
  #isClosed = false;

  private constructor(send: (data: Buffer) => void, destroy: () => void, onData: (fn: (b: Buffer) => void) => void, onClose: (fn: () => void) => void) {
    this.#send = send;
    this.#destroy = destroy;
    onData((chunk) => this.#receive(chunk));
    this.closed = new Promise((resolve) =>
      onClose(() => {
        this.#isClosed = true;
        resolve();
        for (const wake of this.#waiters) wake();
      }),
    );
  }

  /**
   * mqtt://, mqtts:// (any certificate unless `ca` is given), ws:// or wss://. `localAddress` (TCP) connects from
   * another loopback address (127.0.0.2, …), to play a second client machine.
   */
  static async open(url: string, options: { ca?: Buffer; localAddress?: string } = {}): Promise<RawConnection> {
    const u = new URL(url);
    if (u.protocol === 'ws:' || u.protocol === 'wss:') {
      const ws = new WebSocket(url, ['mqtt'], { ca: options.ca, rejectUnauthorized: options.ca !== undefined, localAddress: options.localAddress });
      await withTimeout(
        new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject))),
        5000,
        `WebSocket open ${url}`,
      );
      ws.on('error', () => {});
      return new RawConnection(
        (data) => ws.send(data),
        () => ws.terminate(),
        (fn) => ws.on('message', (data: Buffer) => fn(data)),
        (fn) => ws.once('close', fn),
      );
    }
    const port = Number(u.port);
    const host = u.hostname;
    const socket: Socket =
      u.protocol === 'mqtts:'
        ? tlsConnect({ host, port, ca: options.ca, rejectUnauthorized: options.ca !== undefined, servername: 'localhost' })
        : netConnect({ host, port, localAddress: options.localAddress });
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.once(u.protocol === 'mqtts:' ? 'secureConnect' : 'connect', () => resolve());
        socket.once('error', reject);
      }),
      5000,
      `connect ${url}`,
    );
    socket.setNoDelay(true);
    socket.on('error', () => {});
    const conn = new RawConnection(
      (data) => socket.write(data),
      () => socket.destroy(),
      (fn) => socket.on('data', fn),
      (fn) => socket.once('close', fn),
    );
    conn.#end = (data) => (data ? socket.end(data) : socket.end());
    return conn;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  write(data: Buffer): void {
    if (!this.#isClosed) this.#send(data);
  }

  destroy(): void {
    this.#destroy();
  }

  /** TCP only: writes `data`, then half-closes (FIN); replies can still be read. */
  end(data?: Buffer): void {
    this.#end(data);
  }

  /** The first received packet of `type` not yet taken; rejects when the connection closes first. */
  async next(type: number, ms = 5000): Promise<RawPacket> {
    let wake!: () => void;
    const found = new Promise<RawPacket>((resolve, reject) => {
      // Settled once: the waiter leaves the set only after the promise settles, and a packet that arrives in
      // between must stay for the next call instead of being taken by this one.
      let settled = false;
      wake = () => {
        if (settled) return;
        const i = this.packets.findIndex((p) => p.type === type);
        if (i >= 0) {
          settled = true;
          resolve(this.packets.splice(i, 1)[0] as RawPacket);
        } else if (this.#isClosed) {
          settled = true;
          reject(new Error(`connection closed before a packet of type ${type}`));
        }
      };
      this.#waiters.add(wake);
      wake();
    });
    return withTimeout(found, ms, `packet type ${type}`).finally(() => this.#waiters.delete(wake));
  }

  /** Resolves when the broker closes the connection; fails after `ms`. */
  async expectClosed(ms = 5000): Promise<void> {
    await withTimeout(this.closed, ms, 'the broker to close the connection');
  }

  #receive(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (this.#buffer.length < 2) break;
      let len = 0;
      let mult = 1;
      let i = 1;
      let complete = false;
      for (; i < 5 && i < this.#buffer.length; i++) {
        const byte = this.#buffer[i] as number;
        len += (byte & 0x7f) * mult;
        mult *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || this.#buffer.length < i + 1 + len) break;
      const first = this.#buffer[0] as number;
      this.packets.push({ type: first >> 4, flags: first & 0x0f, body: this.#buffer.subarray(i + 1, i + 1 + len) });
      this.#buffer = this.#buffer.subarray(i + 1 + len);
    }
    for (const wake of this.#waiters) wake();
  }
}
