/**
 * Packets an MQTT 3.1.1 server must refuse, each with the clause that says so and what refusing means there: close
 * the connection (without CONNACK when it is the CONNECT itself, MQTT-3.1.4-1), or CONNACK with a return code and
 * then close. Used by test/security/mqtt-conformance.test.ts against tali and by bench/mqtt-conformance.ts to see
 * what plain Aedes and Mosquitto do with the same bytes.
 */
import { connectPacket, publishPacket, subscribePacket, unsubscribePacket, packet, str, u16, TYPE, type ConnectFields } from './raw-mqtt.ts';

export interface Credentials {
  clientId: string;
  username?: string;
  password?: string;
  /** A topic this client may publish to and a filter it may subscribe to, so only the defect is wrong. */
  topic: string;
  filter: string;
}

export type Refusal = { close: true; connack?: undefined } | { close: true; connack: number };

export interface SpecCase {
  clause: string;
  name: string;
  /** Whether a valid CONNECT goes first; otherwise `bytes` is the CONNECT. */
  afterConnect: boolean;
  bytes: (c: Credentials) => Buffer;
  expect: Refusal;
}

const NUL = '\u0000';
/** 0xED 0xA0 0x80 is U+D800 encoded, forbidden by MQTT-1.5.3-1; 0xC0 0x80 an overlong U+0000. */
const SURROGATE = Buffer.from([0xed, 0xa0, 0x80]);
const OVERLONG_NUL = Buffer.from([0xc0, 0x80]);

function withBytes(text: string, bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(text), bytes]);
}

function login(c: Credentials, extra: Partial<ConnectFields> = {}): ConnectFields {
  const fields: ConnectFields = { clientId: c.clientId, ...extra };
  if (c.username !== undefined) fields.username = c.username;
  if (c.password !== undefined) fields.password = c.password;
  return fields;
}

const close = { close: true } as const;

export const SPEC_CASES: SpecCase[] = [
  { clause: 'MQTT-1.5.3-2', name: 'U+0000 in a PUBLISH topic', afterConnect: true, bytes: (c) => publishPacket(`${c.topic}${NUL}x`, 'x'), expect: close },
  { clause: 'MQTT-1.5.3-2', name: 'U+0000 in a SUBSCRIBE filter', afterConnect: true, bytes: (c) => subscribePacket(1, [[`${c.filter}${NUL}`, 0]]), expect: close },
  { clause: 'MQTT-1.5.3-2', name: 'U+0000 in an UNSUBSCRIBE filter', afterConnect: true, bytes: (c) => unsubscribePacket(1, [`${c.filter}${NUL}`]), expect: close },
  {
    clause: 'MQTT-1.5.3-2',
    name: 'U+0000 in a Will topic',
    afterConnect: false,
    bytes: (c) => connectPacket(login(c, { will: { topic: `${c.topic}${NUL}`, payload: 'x' } })),
    expect: close,
  },
  { clause: 'MQTT-1.5.3-2', name: 'U+0000 in the client ID', afterConnect: false, bytes: (c) => connectPacket(login(c, { clientId: `${c.clientId}${NUL}` })), expect: close },
  {
    clause: 'MQTT-1.5.3-1',
    name: 'an encoded surrogate (U+D800) in a PUBLISH topic',
    afterConnect: true,
    bytes: (c) => publishPacket(withBytes(c.topic, SURROGATE), 'x'),
    expect: close,
  },
  {
    clause: 'MQTT-1.5.3-1',
    name: 'an overlong U+0000 in a SUBSCRIBE filter',
    afterConnect: true,
    bytes: (c) => subscribePacket(1, [[withBytes(c.filter, OVERLONG_NUL), 0]]),
    expect: close,
  },
  { clause: 'MQTT-1.5.3-1', name: 'a 0xFF byte in a PUBLISH topic', afterConnect: true, bytes: (c) => publishPacket(withBytes(c.topic, Buffer.from([0xff])), 'x'), expect: close },
  { clause: 'MQTT-4.7.3-1', name: 'an empty Will topic', afterConnect: false, bytes: (c) => connectPacket(login(c, { will: { topic: '', payload: 'x' } })), expect: close },
  { clause: 'MQTT-3.1.3-8', name: 'an empty client ID with CleanSession 0', afterConnect: false, bytes: (c) => connectPacket(login(c, { clientId: '', clean: false })), expect: { close: true, connack: 2 } },
  { clause: 'MQTT-3.1.2-3', name: 'the reserved CONNECT flag set', afterConnect: false, bytes: (c) => connectPacket(login(c, { extraFlags: 0x01 })), expect: close },
  { clause: 'MQTT-3.1.2-13', name: 'Will QoS without the Will flag', afterConnect: false, bytes: (c) => connectPacket(login(c, { extraFlags: 0x08 })), expect: close },
  { clause: 'MQTT-3.1.2-15', name: 'Will retain without the Will flag', afterConnect: false, bytes: (c) => connectPacket(login(c, { extraFlags: 0x20 })), expect: close },
  {
    clause: 'MQTT-3.1.2-14',
    name: 'Will QoS 3',
    afterConnect: false,
    bytes: (c) => connectPacket(login(c, { will: { topic: c.topic, payload: 'x', qos: 3 } })),
    expect: close,
  },
  {
    clause: 'MQTT-3.1.2-22',
    name: 'a password without a user name',
    afterConnect: false,
    bytes: (c) => connectPacket({ clientId: c.clientId, password: c.password ?? 'x' }),
    expect: close,
  },
  { clause: 'MQTT-3.1.2-2', name: 'protocol level 7', afterConnect: false, bytes: (c) => connectPacket(login(c, { protocolLevel: 7 })), expect: { close: true, connack: 1 } },
  { clause: 'MQTT-3.1.0-1', name: 'a first packet that is not CONNECT', afterConnect: false, bytes: (c) => subscribePacket(1, [[c.filter, 0]]), expect: close },
  { clause: 'MQTT-3.1.0-2', name: 'a second CONNECT', afterConnect: true, bytes: (c) => connectPacket(login(c)), expect: close },
  { clause: 'MQTT-3.3.1-4', name: 'PUBLISH with QoS 3', afterConnect: true, bytes: (c) => publishPacket(c.topic, 'x', { flags: 0x06, qos: 1 }), expect: close },
  { clause: 'MQTT-3.3.1-2', name: 'DUP set on a QoS 0 PUBLISH', afterConnect: true, bytes: (c) => publishPacket(c.topic, 'x', { flags: 0x08 }), expect: close },
  { clause: 'MQTT-3.3.2-2', name: 'a wildcard in a PUBLISH topic', afterConnect: true, bytes: (c) => publishPacket(`${c.topic}/+`, 'x'), expect: close },
  { clause: 'MQTT-4.7.3-1', name: 'an empty PUBLISH topic', afterConnect: true, bytes: () => publishPacket('', 'x'), expect: close },
  { clause: 'MQTT-3.8.1-1', name: 'SUBSCRIBE with flags 0000', afterConnect: true, bytes: (c) => subscribePacket(1, [[c.filter, 0]], 0x00), expect: close },
  { clause: 'MQTT-3.10.1-1', name: 'UNSUBSCRIBE with flags 0000', afterConnect: true, bytes: (c) => unsubscribePacket(1, [c.filter], 0x00), expect: close },
  { clause: 'MQTT-3.8.3-3', name: 'SUBSCRIBE without a filter', afterConnect: true, bytes: () => packet(TYPE.SUBSCRIBE, 0x02, u16(1)), expect: close },
  { clause: 'MQTT-3.10.3-2', name: 'UNSUBSCRIBE without a filter', afterConnect: true, bytes: () => packet(TYPE.UNSUBSCRIBE, 0x02, u16(1)), expect: close },
  { clause: 'MQTT-3.8.3-4', name: 'SUBSCRIBE requesting QoS 3', afterConnect: true, bytes: (c) => subscribePacket(1, [[c.filter, 3]]), expect: close },
  { clause: 'MQTT-4.7.1-2', name: 'a "#" that is not the last level of a filter', afterConnect: true, bytes: (c) => subscribePacket(1, [[`${c.filter}/#/x`, 0]]), expect: close },
  { clause: 'MQTT-4.7.1-3', name: 'a "+" sharing a level of a filter', afterConnect: true, bytes: (c) => subscribePacket(1, [[`${c.filter}/a+`, 0]]), expect: close },
  { clause: 'MQTT-4.7.3-1', name: 'an empty SUBSCRIBE filter', afterConnect: true, bytes: () => subscribePacket(1, [['', 0]]), expect: close },
  { clause: 'MQTT-2.2.2-2', name: 'PINGREQ with flags 0001', afterConnect: true, bytes: () => packet(TYPE.PINGREQ, 0x01, Buffer.alloc(0)), expect: close },
  { clause: 'MQTT-3.14.1-1', name: 'DISCONNECT with flags 0001', afterConnect: true, bytes: () => packet(TYPE.DISCONNECT, 0x01, Buffer.alloc(0)), expect: close },
  { clause: 'MQTT-2.2.1', name: 'reserved packet type 15', afterConnect: true, bytes: () => packet(15, 0, Buffer.alloc(0)), expect: close },
  { clause: 'MQTT-2.2.3', name: 'a five-byte Remaining Length', afterConnect: true, bytes: () => Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]), expect: close },
  { clause: 'MQTT-4.8.0-1', name: 'a client ID string longer than the packet', afterConnect: false, bytes: () => packet(TYPE.CONNECT, 0, Buffer.concat([str('MQTT'), Buffer.from([4, 2]), u16(30), u16(100), Buffer.from('short')])), expect: close },
];
