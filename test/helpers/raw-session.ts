/**
 * An MQTT 3.1.1 client at the byte level that keeps what a session needs to be checked from outside: the CONNACK's
 * Session Present flag and return code, SUBACK return codes, and every PUBLISH received with its flags (QoS, DUP,
 * RETAIN) as sent on the wire. Used by the tests of stored sessions and access rules, where a client library would
 * hide exactly what is checked (it acknowledges, deduplicates and reorders). Closed when the test finishes.
 */
import { onTestFinished } from 'vitest';
import { connectPacket, DISCONNECT, packet, RawConnection, subscribePacket, TYPE, u16, type ConnectFields, type RawPacket } from './raw-mqtt.ts';
import { withTimeout } from './wait.ts';

export interface ReceivedPublish {
  topic: string;
  payload: Buffer;
  qos: number;
  dup: boolean;
  retain: boolean;
  packetId: number;
}

/** MQTT §3.3: the fields of a PUBLISH from the server. */
export function parsePublish(p: RawPacket): ReceivedPublish {
  const topicLength = p.body.readUInt16BE(0);
  const topic = p.body.subarray(2, 2 + topicLength).toString('utf8');
  const qos = (p.flags >> 1) & 0x03;
  const packetId = qos > 0 ? p.body.readUInt16BE(2 + topicLength) : 0;
  const payload = p.body.subarray(2 + topicLength + (qos > 0 ? 2 : 0));
  return { topic, payload, qos, dup: (p.flags & 0x08) !== 0, retain: (p.flags & 0x01) !== 0, packetId };
}

export interface Connack {
  sessionPresent: boolean;
  returnCode: number;
}

export class RawSession {
  readonly conn: RawConnection;
  /** Every PUBLISH received, in order. */
  readonly received: ReceivedPublish[] = [];
  readonly #autoAck: boolean;
  readonly #onPublish: ((p: ReceivedPublish) => void) | undefined;
  #nextId = 1;
  #taken = 0;
  #waiters = new Set<() => void>();

  private constructor(conn: RawConnection, autoAck: boolean, onPublish: ((p: ReceivedPublish) => void) | undefined) {
    this.conn = conn;
    this.#autoAck = autoAck;
    this.#onPublish = onPublish;
  }

  /**
   * Opens a connection and sends CONNECT. `autoAck` (default true): each QoS 1 PUBLISH is acknowledged as it
   * arrives; false leaves them unacknowledged, as a client that dies before it could. `onPublish` sees each PUBLISH.
   */
  static async connect(
    url: string,
    fields: ConnectFields,
    options: { autoAck?: boolean; localAddress?: string; onPublish?: (p: ReceivedPublish) => void } = {},
  ): Promise<{ session: RawSession; connack: Connack }> {
    const conn = await RawConnection.open(url, options.localAddress ? { localAddress: options.localAddress } : {});
    onTestFinished(() => conn.destroy());
    const session = new RawSession(conn, options.autoAck ?? true, options.onPublish);
    session.#pump();
    conn.write(connectPacket(fields));
    const ack = await conn.next(TYPE.CONNACK);
    return { session, connack: { sessionPresent: ((ack.body[0] as number) & 0x01) === 1, returnCode: ack.body[1] as number } };
  }

  /** SUBSCRIBE with these filters and requested QoS; resolves with the SUBACK return codes. */
  async subscribe(filters: [string, number][]): Promise<number[]> {
    const id = this.#nextId++;
    this.conn.write(subscribePacket(id, filters));
    const ack = await this.conn.next(TYPE.SUBACK);
    expectId(ack, id);
    return [...ack.body.subarray(2)];
  }

  async unsubscribe(filters: string[]): Promise<void> {
    const id = this.#nextId++;
    this.conn.write(packet(TYPE.UNSUBSCRIBE, 0x02, Buffer.concat([u16(id), ...filters.map((f) => Buffer.concat([u16(Buffer.byteLength(f)), Buffer.from(f)]))])));
    expectId(await this.conn.next(TYPE.UNSUBACK), id);
  }

  puback(packetId: number): void {
    this.conn.write(packet(TYPE.PUBACK, 0, u16(packetId)));
  }

  /** A clean DISCONNECT (no will), then waits for the broker to close. */
  async disconnect(): Promise<void> {
    this.conn.write(DISCONNECT);
    await this.conn.expectClosed();
  }

  /** Drops the connection without DISCONNECT (the will is published), and waits until it is closed. */
  async drop(): Promise<void> {
    this.conn.destroy();
    await this.conn.closed;
  }

  /**
   * Resolves with every PUBLISH received up to and including the first on `topic` whose payload is `payload`, not
   * returned by an earlier call. A broker delivers one subscriber's messages in order (MQTT §4.6), so whatever
   * would have been delivered before that sentinel has been by then.
   */
  async until(topic: string, payload: string, ms = 5000): Promise<ReceivedPublish[]> {
    let wake!: () => void;
    const found = new Promise<ReceivedPublish[]>((resolve) => {
      wake = () => {
        const i = this.received.findIndex((p, index) => index >= this.#taken && p.topic === topic && p.payload.toString() === payload);
        if (i < 0) return;
        const out = this.received.slice(this.#taken, i + 1);
        this.#taken = i + 1;
        resolve(out);
      };
      this.#waiters.add(wake);
      wake();
    });
    return withTimeout(found, ms, `"${payload}" on ${topic}`).finally(() => this.#waiters.delete(wake));
  }

  #pump(): void {
    const take = async () => {
      for (;;) {
        let p: RawPacket;
        try {
          p = await this.conn.next(TYPE.PUBLISH, 3_600_000);
        } catch {
          return;
        }
        const publish = parsePublish(p);
        this.received.push(publish);
        this.#onPublish?.(publish);
        if (this.#autoAck && publish.qos === 1) this.puback(publish.packetId);
        for (const wake of this.#waiters) wake();
      }
    };
    void take();
  }
}

function expectId(ack: RawPacket, id: number): void {
  if (ack.body.readUInt16BE(0) !== id) throw new Error(`acknowledgement for packet ${ack.body.readUInt16BE(0)}, expected ${id}`);
}
