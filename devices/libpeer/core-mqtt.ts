/**
 * The MQTT side of a libpeer device, byte for byte: coreMQTT (FreeRTOS/coreMQTT at 03290fe, the submodule of
 * sepfy/libpeer 9319aa4) as peer_signaling.c drives it. Packets are serialized field by field as coreMQTT does
 * (MQTT 3.1.1 §3), over TLS always (ssl_transport.c: mbedTLS, VERIFY_OPTIONAL, so any certificate is taken).
 *
 *   CONNECT   protocol "MQTT" level 4, flags 0xC0 (user name, password; CleanSession 0, no will), keep alive 60,
 *             client ID = the last level of the URL path (cut to 31 characters), user/password from the token
 *   CONNACK   awaited 1000 ms (CONNACK_RECV_TIMEOUT_MS); else the connect failed and nothing else is sent
 *   SUBSCRIBE one filter, <path>/invoke, QoS 0; packet ids from 1 (MQTT_GetPacketId)
 *   PUBLISH   QoS 0, retain 0, <path>/result
 *   PINGREQ   after 30 s without sending or receiving (PACKET_TX_TIMEOUT_MS, PACKET_RX_TIMEOUT_MS); a PINGRESP later
 *             than 5 s (MQTT_PINGRESP_TIMEOUT_MS) is a keep-alive timeout: the loop fails from then on
 *   receive   a whole packet must fit the 4096-byte network buffer (CONFIG_MQTT_BUFFER_SIZE); a larger one is read
 *             and dropped (discardStoredPacket)
 *   DISCONNECT after an UNSUBSCRIBE, on peer_signaling_disconnect()
 *
 * Not a general MQTT client: it does what libpeer does and no more (no reconnect, no QoS 1).
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';

export const CONFIG_MQTT_BUFFER_SIZE = 4096;
export const KEEP_ALIVE_TIMEOUT_SECONDS = 60;
export const CONNACK_RECV_TIMEOUT_MS = 1000;
export const PACKET_TX_TIMEOUT_MS = 30_000;
export const PACKET_RX_TIMEOUT_MS = 30_000;
export const MQTT_PINGRESP_TIMEOUT_MS = 5000;

const TYPE = { CONNECT: 1, CONNACK: 2, PUBLISH: 3, SUBSCRIBE: 8, SUBACK: 9, UNSUBSCRIBE: 10, UNSUBACK: 11, PINGREQ: 12, PINGRESP: 13, DISCONNECT: 14 } as const;

export interface CoreMqttOptions {
  host: string;
  port: number;
  clientId: string;
  username?: string | undefined;
  password?: string | undefined;
  /** Milliseconds, for tests; coreMQTT's defaults otherwise. */
  timing?: Partial<{ connackMs: number; txIdleMs: number; rxIdleMs: number; pingRespMs: number }> | undefined;
}

export interface CoreMqttEvents {
  /** A PUBLISH that fitted the buffer. */
  publish(topic: string, payload: Buffer): void;
  /** A PUBLISH dropped for its size, as coreMQTT does ("Incoming packet will be dumped"). */
  dropped(bytes: number): void;
  suback(codes: number[], packetId: number): void;
  /** The TLS connection is gone (closed by the broker, or a keep-alive timeout made the loop fail). */
  closed(reason: string): void;
}

export class CoreMqtt {
  readonly #options: CoreMqttOptions;
  readonly #events: CoreMqttEvents;
  #socket: TLSSocket | undefined;
  #input: Buffer = Buffer.alloc(0);
  #packetId = 0;
  #lastTx = 0;
  #lastRx = 0;
  #pingSentAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #connack: ((code: number) => void) | undefined;
  #closed = false;
  /** Bytes of PUBLISH packets dropped because they did not fit (for tests). */
  dropped = 0;

  constructor(options: CoreMqttOptions, events: CoreMqttEvents) {
    this.#options = options;
    this.#events = events;
  }

  /** TLS, CONNECT, CONNACK. Resolves with the CONNACK return code; rejects when none came in time. */
  async connect(): Promise<number> {
    const { host, port } = this.#options;
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ host, port, rejectUnauthorized: false, ...(isIP(host) === 0 && { servername: host }) });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    socket.setNoDelay(true);
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.#gone('connection closed'));
    const timing = this.#options.timing ?? {};
    const code = new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no CONNACK within ${timing.connackMs ?? CONNACK_RECV_TIMEOUT_MS} ms`)), timing.connackMs ?? CONNACK_RECV_TIMEOUT_MS);
      this.#connack = (rc) => (clearTimeout(timer), resolve(rc));
    });
    this.#send(connectPacket(this.#options));
    const rc = await code;
    if (rc === 0) this.#timer = setInterval(() => this.#keepAlive(), 250);
    return rc;
  }

  /** Returns the packet id (SUBACKs may come back in another order). */
  subscribe(filter: string): number {
    const id = this.#nextPacketId();
    this.#send(packet(TYPE.SUBSCRIBE << 4 | 0x02, Buffer.concat([u16(id), str(filter), Buffer.from([0])])));
    return id;
  }

  unsubscribe(filter: string): void {
    this.#send(packet(TYPE.UNSUBSCRIBE << 4 | 0x02, Buffer.concat([u16(this.#nextPacketId()), str(filter)])));
  }

  /** QoS 0, retain 0. MQTT_Publish takes a packet id for QoS 0 too (MQTT_GetPacketId) without sending it. */
  publish(topic: string, payload: string): void {
    this.#nextPacketId();
    this.#send(packet(TYPE.PUBLISH << 4, Buffer.concat([str(topic), Buffer.from(payload, 'utf8')])));
  }

  /** MQTT_Disconnect, then the TLS connection is closed. */
  disconnect(): void {
    this.#send(Buffer.from([TYPE.DISCONNECT << 4, 0]));
    this.#socket?.end();
    this.#stop();
  }

  /** The device loses power: the TCP connection is dropped without a word (the broker publishes the will). */
  destroy(): void {
    this.#socket?.destroy();
    this.#stop();
  }

  #nextPacketId(): number {
    this.#packetId = this.#packetId === 0xffff ? 1 : this.#packetId + 1;
    return this.#packetId;
  }

  #send(bytes: Buffer): void {
    if (this.#closed || this.#socket === undefined) return;
    this.#lastTx = performance.now();
    this.#socket.write(bytes);
  }

  #keepAlive(): void {
    const t = { txIdleMs: PACKET_TX_TIMEOUT_MS, rxIdleMs: PACKET_RX_TIMEOUT_MS, pingRespMs: MQTT_PINGRESP_TIMEOUT_MS, ...this.#options.timing };
    const now = performance.now();
    if (this.#pingSentAt !== undefined) {
      // MQTTKeepAliveTimeout: libpeer's loop ignores the status; the connection is as good as dead.
      if (now - this.#pingSentAt > t.pingRespMs) this.#gone('keep-alive timeout');
      return;
    }
    if (now - this.#lastTx >= Math.min(t.txIdleMs, KEEP_ALIVE_TIMEOUT_SECONDS * 1000) || now - this.#lastRx >= t.rxIdleMs) {
      this.#pingSentAt = now;
      this.#send(Buffer.from([TYPE.PINGREQ << 4, 0]));
    }
  }

  #onData(chunk: Buffer): void {
    this.#lastRx = performance.now();
    this.#input = this.#input.length === 0 ? chunk : Buffer.concat([this.#input, chunk]);
    for (;;) {
      const header = readHeader(this.#input);
      if (header === undefined || this.#input.length < header.total) return;
      const body = this.#input.subarray(header.headerLength, header.total);
      const first = this.#input[0] as number;
      this.#input = this.#input.subarray(header.total);
      if (header.total > CONFIG_MQTT_BUFFER_SIZE) {
        this.dropped += header.total;
        this.#events.dropped(header.total);
        continue;
      }
      this.#onPacket(first, body);
    }
  }

  #onPacket(first: number, body: Buffer): void {
    switch (first >> 4) {
      case TYPE.CONNACK:
        this.#connack?.(body[1] ?? 255);
        this.#connack = undefined;
        return;
      case TYPE.SUBACK:
        this.#events.suback([...body.subarray(2)], body.readUInt16BE(0));
        return;
      case TYPE.PINGRESP:
        this.#pingSentAt = undefined;
        return;
      case TYPE.PUBLISH: {
        const topicLength = body.readUInt16BE(0);
        const topic = body.subarray(2, 2 + topicLength).toString('utf8');
        const qos = (first >> 1) & 3;
        // QoS 0 subscriptions: the broker delivers at QoS 0, without a packet id.
        const payload = body.subarray(2 + topicLength + (qos > 0 ? 2 : 0));
        this.#events.publish(topic, Buffer.from(payload));
        return;
      }
    }
  }

  #gone(reason: string): void {
    if (this.#closed) return;
    this.#stop();
    this.#socket?.destroy();
    this.#events.closed(reason);
  }

  #stop(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}

/** CONNECT as MQTT_SerializeConnect writes it (MQTT 3.1.1 §3.1): no will, CleanSession 0. */
function connectPacket(o: CoreMqttOptions): Buffer {
  let flags = 0;
  if (o.username !== undefined) flags |= 0x80;
  if (o.password !== undefined) flags |= 0x40;
  const parts = [str('MQTT'), Buffer.from([4, flags]), u16(KEEP_ALIVE_TIMEOUT_SECONDS), str(o.clientId)];
  if (o.username !== undefined) parts.push(str(o.username));
  if (o.password !== undefined) parts.push(str(o.password));
  return packet(TYPE.CONNECT << 4, Buffer.concat(parts));
}

function packet(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), remainingLength(body.length), body]);
}

function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

function readHeader(buf: Buffer): { headerLength: number; total: number } | undefined {
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const byte = buf[i];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * 128 ** (i - 1);
    if ((byte & 0x80) === 0) return { headerLength: i + 1, total: i + 1 + value };
  }
  throw new Error('malformed remaining length');
}

function str(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([u16(bytes.length), bytes]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
