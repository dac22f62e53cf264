/**
 * A deliberately lean MQTT 3.1.1 client for load generation (CONNECT with will, SUBSCRIBE, PUBLISH QoS 0/1, PUBACK,
 * nothing else). mqtt.js costs more CPU per message than a fast broker does, so with it the suite would measure its
 * own client; this one writes pre-encoded packets and parses only fixed headers, packet IDs and payload offsets.
 */
import { connect as netConnect, type Socket } from 'node:net';

export interface MiniConnectOptions {
  port: number;
  host?: string;
  /** Source address (e.g. 127.0.0.2): spreads many connections over several loopback addresses. */
  localAddress?: string;
  clientId: string;
  username?: string;
  password?: string;
  will?: { topic: string; payload: Buffer | string; qos: 0 | 1; retain: boolean };
  keepaliveS?: number;
  timeoutMs?: number;
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const out = Buffer.allocUnsafe(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let digit = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) digit |= 0x80;
    bytes.push(digit);
  } while (n > 0);
  return Buffer.from(bytes);
}

function packet(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), remainingLength(body.length), body]);
}

export function connectPacket(o: MiniConnectOptions): Buffer {
  let flags = 0x02; // clean session
  const payload: Buffer[] = [str(o.clientId)];
  if (o.will) {
    flags |= 0x04 | (o.will.qos << 3) | (o.will.retain ? 0x20 : 0);
    payload.push(str(o.will.topic), str(Buffer.from(o.will.payload)));
  }
  if (o.username !== undefined) (flags |= 0x80), payload.push(str(o.username));
  if (o.password !== undefined) (flags |= 0x40), payload.push(str(o.password));
  const header = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, flags, 0, 0]);
  header.writeUInt16BE(o.keepaliveS ?? 60, 8);
  return packet(0x10, Buffer.concat([header, ...payload]));
}

/** A PUBLISH whose topic and payload are fixed; `packetId` is patched in per send for QoS 1. */
export class PreparedPublish {
  readonly bytes: Buffer;
  readonly #idOffset: number;
  /** Where the payload starts inside `bytes` (to stamp a timestamp into it). */
  readonly payloadOffset: number;

  constructor(topic: string, payload: Buffer, qos: 0 | 1, retain = false) {
    const t = str(topic);
    const body = Buffer.concat([t, qos ? Buffer.alloc(2) : Buffer.alloc(0), payload]);
    this.bytes = packet(0x30 | (qos << 1) | (retain ? 1 : 0), body);
    const headerLen = this.bytes.length - body.length;
    this.#idOffset = qos ? headerLen + t.length : -1;
    this.payloadOffset = headerLen + t.length + (qos ? 2 : 0);
  }

  withId(id: number): Buffer {
    if (this.#idOffset >= 0) this.bytes.writeUInt16BE(id, this.#idOffset);
    return this.bytes;
  }
}

const PINGREQ = Buffer.from([0xc0, 0]);

export class MiniMqtt {
  readonly socket: Socket;
  /** payload: a view into the receive buffer, valid only during the call. */
  onMessage: ((payload: Buffer, topicLength: number) => void) | undefined;
  onPuback: ((id: number) => void) | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #nextId = 1;
  #waiters = new Map<number, () => void>();
  #connack: ((code: number) => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => this.#onData(chunk));
  }

  static connect(o: MiniConnectOptions): Promise<MiniMqtt> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port: o.port, host: o.host ?? '127.0.0.1', localAddress: o.localAddress, noDelay: true });
      const client = new MiniMqtt(socket);
      const timer = setTimeout(() => (socket.destroy(), reject(new Error(`CONNACK timeout for ${o.clientId}`))), o.timeoutMs ?? 30_000);
      const fail = (err: Error) => (clearTimeout(timer), reject(err));
      socket.once('error', fail);
      socket.once('close', () => fail(new Error(`closed before CONNACK (${o.clientId})`)));
      client.#connack = (code) => {
        clearTimeout(timer);
        socket.off('error', fail);
        socket.removeAllListeners('close');
        socket.on('error', () => {});
        if (code === 0) resolve(client);
        else (socket.destroy(), reject(new Error(`CONNACK ${code} for ${o.clientId}`)));
      };
      socket.write(connectPacket(o));
    });
  }

  nextId(): number {
    const id = this.#nextId;
    this.#nextId = id === 0xffff ? 1 : id + 1;
    return id;
  }

  subscribe(topics: string[], qos: 0 | 1): Promise<void> {
    const id = this.nextId();
    const idb = Buffer.alloc(2);
    idb.writeUInt16BE(id);
    const body = Buffer.concat([idb, ...topics.flatMap((t) => [str(t), Buffer.from([qos])])]);
    return new Promise((resolve) => {
      this.#waiters.set(id, resolve);
      this.socket.write(packet(0x82, body));
    });
  }

  /** Publishes and resolves on PUBACK (QoS 1) or once written (QoS 0). */
  publishAcked(topic: string, payload: Buffer | string, qos: 0 | 1, retain = false): Promise<void> {
    const p = new PreparedPublish(topic, Buffer.from(payload), qos, retain);
    if (qos === 0) return new Promise((resolve) => this.socket.write(p.bytes, () => resolve()));
    const id = this.nextId();
    return new Promise((resolve) => {
      this.#waiters.set(id, resolve);
      this.socket.write(p.withId(id));
    });
  }

  /** PINGREQ: a device's keepalive (the broker drops a client silent for 1.5 × its keepalive). */
  ping(): void {
    if (!this.socket.destroyed) this.socket.write(PINGREQ);
  }

  write(bytes: Buffer): boolean {
    return this.socket.write(bytes);
  }

  /** DISCONNECT, then close. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end(Buffer.from([0xe0, 0]));
  }

  #onData(chunk: Buffer): void {
    let buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    let off = 0;
    for (;;) {
      if (buf.length - off < 2) break;
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let complete = false;
      for (; i < buf.length && i < off + 5; i++) {
        const b = buf[i] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete || buf.length - i < len) break;
      this.#packet(buf[off] as number, buf, i, len);
      off = i + len;
    }
    this.#buf = off < buf.length ? Buffer.from(buf.subarray(off)) : Buffer.alloc(0);
  }

  #packet(first: number, buf: Buffer, start: number, len: number): void {
    const type = first >> 4;
    if (type === 3) {
      const qos = (first >> 1) & 3;
      const topicLen = buf.readUInt16BE(start);
      let p = start + 2 + topicLen;
      if (qos > 0) {
        const id = buf.readUInt16BE(p);
        p += 2;
        this.socket.write(Buffer.from([0x40, 2, id >> 8, id & 0xff]));
      }
      this.onMessage?.(buf.subarray(p, start + len), topicLen);
    } else if (type === 4) {
      const id = buf.readUInt16BE(start);
      const waiter = this.#waiters.get(id);
      if (waiter) (this.#waiters.delete(id), waiter());
      this.onPuback?.(id);
    } else if (type === 9) {
      const id = buf.readUInt16BE(start);
      const waiter = this.#waiters.get(id);
      if (waiter) (this.#waiters.delete(id), waiter());
    } else if (type === 2) {
      this.#connack?.(buf[start + 1] as number);
    }
  }
}
