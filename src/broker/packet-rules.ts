/**
 * The MQTT 3.1.1 rules a server must enforce on what a client sends, checked on whole packets before Aedes sees
 * them. Aedes 1.2 lets several of these through (see docs/security.md); each check names its clause.
 *
 * Pure functions over bytes: no state, no I/O. A verdict is either the few fields the guard needs (topic, QoS,
 * packet identifier) or a refusal with the clause and, for CONNECT, the CONNACK return code to send first.
 */

export const PACKET = {
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

export interface Refusal {
  ok: false;
  clause: string;
  reason: string;
  /** CONNACK return code to send before closing (MQTT-3.1.2-2, MQTT-3.1.3-9); otherwise close without one. */
  connack?: 1 | 2;
}

export interface ConnectFields {
  ok: true;
  protocolLevel: number;
  clientId: string;
  clean: boolean;
  username: string | undefined;
  willTopic: string | undefined;
}

export interface PacketFields {
  ok: true;
  type: number;
  qos: number;
  packetId: number;
  /** PUBLISH topic. */
  topic?: string;
  /** SUBSCRIBE / UNSUBSCRIBE filters. */
  filters?: string[];
}

export type FixedHeader = { type: number; flags: number; remaining: number; headerBytes: number };

/**
 * Reads the fixed header (MQTT §2.2) at the start of `buf`: 'incomplete' until enough bytes are there, 'malformed'
 * for a Remaining Length longer than four bytes (MQTT §2.2.3: at most 268 435 455).
 */
export function readFixedHeader(buf: Buffer): FixedHeader | 'incomplete' | 'malformed' {
  if (buf.length < 2) return 'incomplete';
  let remaining = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    if (i >= buf.length) return 'incomplete';
    const byte = buf[i] as number;
    remaining += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) {
      const first = buf[0] as number;
      return { type: first >> 4, flags: first & 0x0f, remaining, headerBytes: i + 1 };
    }
    multiplier *= 128;
  }
  return 'malformed';
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function refuse(clause: string, reason: string, connack?: 1 | 2): Refusal {
  return connack === undefined ? { ok: false, clause, reason } : { ok: false, clause, reason, connack };
}

/** Reads length-prefixed fields (MQTT §1.5.2, §1.5.3) from a packet body; every read is bounds-checked. */
class Reader {
  #buf: Buffer;
  #pos: number;
  constructor(buf: Buffer, pos = 0) {
    this.#buf = buf;
    this.#pos = pos;
  }
  get left(): number {
    return this.#buf.length - this.#pos;
  }
  u8(): number | undefined {
    return this.left >= 1 ? (this.#buf[this.#pos++] as number) : undefined;
  }
  u16(): number | undefined {
    if (this.left < 2) return undefined;
    const v = this.#buf.readUInt16BE(this.#pos);
    this.#pos += 2;
    return v;
  }
  bytes(): Buffer | undefined {
    const len = this.u16();
    if (len === undefined || this.left < len) return undefined;
    const out = this.#buf.subarray(this.#pos, this.#pos + len);
    this.#pos += len;
    return out;
  }
  /** A UTF-8 string field: a Refusal if it is ill-formed (MQTT-1.5.3-1) or holds U+0000 (MQTT-1.5.3-2). */
  string(what: string): string | Refusal | undefined {
    const raw = this.bytes();
    if (raw === undefined) return undefined;
    return decodeString(raw, what);
  }
}

function decodeString(raw: Buffer, what: string): string | Refusal {
  if (raw.includes(0)) return refuse('MQTT-1.5.3-2', `U+0000 in ${what}`);
  try {
    return utf8.decode(raw);
  } catch {
    return refuse('MQTT-1.5.3-1', `ill-formed UTF-8 in ${what}`);
  }
}

function isRefusal(v: unknown): v is Refusal {
  return typeof v === 'object' && v !== null && (v as Refusal).ok === false;
}

const TRUNCATED = (what: string) => refuse('MQTT-4.8.0-1', `${what} is shorter than its fields`);

/** MQTT §3.1: CONNECT. The connection is closed without CONNACK unless the refusal carries a return code. */
export function checkConnect(flags: number, body: Buffer): ConnectFields | Refusal {
  if (flags !== 0) return refuse('MQTT-2.2.2-2', 'CONNECT fixed header flags must be 0');
  const r = new Reader(body);
  const name = r.string('the protocol name');
  if (name === undefined) return TRUNCATED('CONNECT');
  if (isRefusal(name)) return name;
  const level = r.u8();
  const connectFlags = r.u8();
  const keepalive = r.u16();
  if (level === undefined || connectFlags === undefined || keepalive === undefined) return TRUNCATED('CONNECT');
  // MQTT-3.1.2-1 lets a server close on a wrong protocol name; level 3 is MQTT 3.1 ("MQIsdp"), which Aedes speaks.
  if (name !== 'MQTT' && name !== 'MQIsdp') return refuse('MQTT-3.1.2-1', `protocol name ${JSON.stringify(name.slice(0, 16))}`);
  if (level !== 4 && level !== 3) return refuse('MQTT-3.1.2-2', `protocol level ${level} is not supported`, 1);
  if ((level === 4) !== (name === 'MQTT')) return refuse('MQTT-3.1.2-1', `protocol name ${name} with level ${level}`);
  if (connectFlags & 0x01) return refuse('MQTT-3.1.2-3', 'the reserved CONNECT flag is set');
  const clean = (connectFlags & 0x02) !== 0;
  const will = (connectFlags & 0x04) !== 0;
  const willQos = (connectFlags >> 3) & 0x03;
  const willRetain = (connectFlags & 0x20) !== 0;
  const hasPassword = (connectFlags & 0x40) !== 0;
  const hasUsername = (connectFlags & 0x80) !== 0;
  if (!will && willQos !== 0) return refuse('MQTT-3.1.2-13', 'Will QoS set without the Will flag');
  if (!will && willRetain) return refuse('MQTT-3.1.2-15', 'Will retain set without the Will flag');
  if (willQos === 3) return refuse('MQTT-3.1.2-14', 'Will QoS 3');
  if (hasPassword && !hasUsername) return refuse('MQTT-3.1.2-22', 'a password without a user name');

  const clientId = r.string('the client ID');
  if (clientId === undefined) return TRUNCATED('CONNECT');
  if (isRefusal(clientId)) return clientId;
  let willTopic: string | undefined;
  if (will) {
    const topic = r.string('the Will topic');
    if (topic === undefined || r.bytes() === undefined) return TRUNCATED('CONNECT');
    if (isRefusal(topic)) return topic;
    if (topic.length === 0) return refuse('MQTT-4.7.3-1', 'an empty Will topic');
    if (/[+#]/.test(topic)) return refuse('MQTT-3.3.2-2', 'a wildcard in the Will topic');
    willTopic = topic;
  }
  let username: string | undefined;
  if (hasUsername) {
    const u = r.string('the user name');
    if (u === undefined) return TRUNCATED('CONNECT');
    if (isRefusal(u)) return u;
    username = u;
  }
  if (hasPassword && r.bytes() === undefined) return TRUNCATED('CONNECT');
  if (r.left !== 0) return refuse('MQTT-3.1.4-1', 'bytes after the last CONNECT field');
  // MQTT-3.1.3-8: a zero-byte client ID needs CleanSession 1; otherwise CONNACK 0x02, then close (MQTT-3.1.3-9).
  if (clientId.length === 0 && !clean) return refuse('MQTT-3.1.3-8', 'an empty client ID with CleanSession 0', 2);
  return { ok: true, protocolLevel: level, clientId, clean, username, willTopic };
}

/** Fixed-header flags every packet type must carry (MQTT §2.2.2, Table 2.2); PUBLISH is checked separately. */
const REQUIRED_FLAGS: Record<number, number> = {
  [PACKET.PUBACK]: 0,
  [PACKET.PUBREC]: 0,
  [PACKET.PUBREL]: 0b0010,
  [PACKET.PUBCOMP]: 0,
  [PACKET.SUBSCRIBE]: 0b0010,
  [PACKET.UNSUBSCRIBE]: 0b0010,
  [PACKET.PINGREQ]: 0,
  [PACKET.DISCONNECT]: 0,
};

const FLAG_CLAUSE: Record<number, string> = {
  [PACKET.PUBREL]: 'MQTT-3.6.1-1',
  [PACKET.SUBSCRIBE]: 'MQTT-3.8.1-1',
  [PACKET.UNSUBSCRIBE]: 'MQTT-3.10.1-1',
  [PACKET.DISCONNECT]: 'MQTT-3.14.1-1',
};

/** Every packet a client may send after CONNECT. */
export function checkPacket(type: number, flags: number, body: Buffer): PacketFields | Refusal {
  if (type === PACKET.CONNECT) return refuse('MQTT-3.1.0-2', 'a second CONNECT');
  if (type === PACKET.PUBLISH) return checkPublish(flags, body);
  if (type === 0 || type === 15) return refuse('MQTT-2.2.1', `reserved packet type ${type}`);
  const required = REQUIRED_FLAGS[type];
  if (required === undefined) return refuse('MQTT-4.8.0-1', `packet type ${type} is not one a client sends`);
  if (flags !== required) return refuse(FLAG_CLAUSE[type] ?? 'MQTT-2.2.2-2', `invalid fixed header flags ${flags} on packet type ${type}`);
  switch (type) {
    case PACKET.PINGREQ:
    case PACKET.DISCONNECT:
      return body.length === 0 ? { ok: true, type, qos: 0, packetId: 0 } : refuse('MQTT-4.8.0-1', `packet type ${type} has a body`);
    case PACKET.PUBACK:
    case PACKET.PUBREC:
    case PACKET.PUBREL:
    case PACKET.PUBCOMP:
      return body.length === 2 ? { ok: true, type, qos: 0, packetId: body.readUInt16BE(0) } : refuse('MQTT-4.8.0-1', `packet type ${type} must have a 2-byte body`);
    case PACKET.SUBSCRIBE:
      return checkSubscribe(body, true);
    default:
      return checkSubscribe(body, false);
  }
}

function checkPublish(flags: number, body: Buffer): PacketFields | Refusal {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) return refuse('MQTT-3.3.1-4', 'PUBLISH with QoS 3');
  if (qos === 0 && (flags & 0x08) !== 0) return refuse('MQTT-3.3.1-2', 'DUP set on a QoS 0 PUBLISH');
  const r = new Reader(body);
  const topic = r.string('the PUBLISH topic');
  if (topic === undefined) return TRUNCATED('PUBLISH');
  if (isRefusal(topic)) return topic;
  if (topic.length === 0) return refuse('MQTT-4.7.3-1', 'an empty PUBLISH topic');
  if (/[+#]/.test(topic)) return refuse('MQTT-3.3.2-2', 'a wildcard in a PUBLISH topic');
  let packetId = 0;
  if (qos > 0) {
    const id = r.u16();
    if (id === undefined) return TRUNCATED('PUBLISH');
    if (id === 0) return refuse('MQTT-2.3.1-1', 'packet identifier 0');
    packetId = id;
  }
  return { ok: true, type: PACKET.PUBLISH, qos, packetId, topic };
}

/** SUBSCRIBE (MQTT §3.8) and UNSUBSCRIBE (MQTT §3.10): at least one filter, each a valid Topic Filter. */
function checkSubscribe(body: Buffer, subscribe: boolean): PacketFields | Refusal {
  const what = subscribe ? 'SUBSCRIBE' : 'UNSUBSCRIBE';
  const r = new Reader(body);
  const packetId = r.u16();
  if (packetId === undefined) return TRUNCATED(what);
  if (packetId === 0) return refuse('MQTT-2.3.1-1', 'packet identifier 0');
  const filters: string[] = [];
  while (r.left > 0) {
    const filter = r.string(`a ${what} filter`);
    if (filter === undefined) return TRUNCATED(what);
    if (isRefusal(filter)) return filter;
    const invalid = filterProblem(filter);
    if (invalid) return invalid;
    if (subscribe) {
      const qos = r.u8();
      if (qos === undefined) return TRUNCATED(what);
      if (qos > 2) return refuse('MQTT-3.8.3-4', `requested QoS byte ${qos}`);
    }
    filters.push(filter);
  }
  if (filters.length === 0) return refuse(subscribe ? 'MQTT-3.8.3-3' : 'MQTT-3.10.3-2', `${what} without a filter`);
  return { ok: true, type: subscribe ? PACKET.SUBSCRIBE : PACKET.UNSUBSCRIBE, qos: 0, packetId, filters };
}

/** MQTT §4.7.1: '#' alone in the last level, '+' alone in its level; MQTT-4.7.3-1: not empty. */
function filterProblem(filter: string): Refusal | undefined {
  if (filter.length === 0) return refuse('MQTT-4.7.3-1', 'an empty topic filter');
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return refuse('MQTT-4.7.1-2', `"#" misplaced in filter ${JSON.stringify(filter.slice(0, 64))}`);
    }
    if (level.includes('+') && level !== '+') return refuse('MQTT-4.7.1-3', `"+" shares a level in filter ${JSON.stringify(filter.slice(0, 64))}`);
  }
  return undefined;
}

/** CONNACK with a refusal return code (MQTT §3.2). */
export function connackBytes(returnCode: number): Buffer {
  return Buffer.from([PACKET.CONNACK << 4, 2, 0, returnCode]);
}

export function pubackBytes(packetId: number): Buffer {
  return Buffer.from([PACKET.PUBACK << 4, 2, packetId >> 8, packetId & 0xff]);
}
