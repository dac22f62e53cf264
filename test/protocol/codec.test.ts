import { describe, expect, it } from 'vitest';
import {
  byteLength,
  CHANNEL_TYPES,
  decode,
  encode,
  encodeForDevice,
  MAX_DOWN_BYTES,
  MESSAGE_SCHEMAS,
  ProtocolError,
  type Channel,
  type ErrorCode,
  type MessageType,
} from '../../src/protocol/index.ts';
import { CHANNELS_OF, SESSION, TS, VALID, variant } from './fixtures.ts';

const CHANNELS = Object.keys(CHANNEL_TYPES) as Channel[];
const TYPES = Object.keys(MESSAGE_SCHEMAS) as MessageType[];
const utf8 = (text: string) => new TextEncoder().encode(text);

/** The ProtocolError decode() throws; fails the test if it returns or throws anything else. */
function rejection(channel: Channel, payload: string | Uint8Array, maxBytes?: number): ProtocolError {
  try {
    decode(channel, payload, maxBytes);
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error(`decode accepted ${typeof payload === 'string' ? payload.slice(0, 120) : 'bytes'}`);
}

function expectCode(code: ErrorCode, channel: Channel, payload: string | Uint8Array, maxBytes?: number): ProtocolError {
  const err = rejection(channel, payload, maxBytes);
  expect(err.code, err.message).toBe(code);
  return err;
}

describe('decode: valid messages', () => {
  it('fixtures cover every message type and CHANNELS_OF mirrors CHANNEL_TYPES', () => {
    expect(Object.keys(VALID).sort()).toEqual([...TYPES].sort());
    for (const channel of CHANNELS) {
      const expected = TYPES.filter((type) => CHANNELS_OF[type].includes(channel));
      expect([...CHANNEL_TYPES[channel]].sort(), channel).toEqual(expected.sort());
    }
  });

  for (const type of TYPES) {
    it(`${type} decodes on ${CHANNELS_OF[type].join(', ')} and round-trips through encode`, () => {
      for (const channel of CHANNELS_OF[type]) {
        const message = VALID[type];
        expect(decode(channel, encode(message))).toEqual(message);
        expect(decode(channel, utf8(encode(message)))).toEqual(message);
        expect(decode(channel, Buffer.from(encode(message)))).toEqual(message);
        expect(encode(decode(channel, encode(message)))).toBe(encode(message));
      }
    });
  }

  it('accepts the minimal form of every type (optional fields left out)', () => {
    const session = { v: 1, sessionId: SESSION, seq: 1, ts: TS };
    const minimal: [Channel, object][] = [
      ['up', { ...session, type: 'candidate', candidate: 'candidate:1 1 udp 1 192.0.2.1 9 typ host' }],
      ['up', { ...session, type: 'candidate', endOfCandidates: true }],
      ['up', { ...session, type: 'bye' }],
      ['up', { v: 1, type: 'error', ts: TS, code: 'TALI_ERR_INVALID_SDP', message: '' }],
      ['down', { v: 1, type: 'start', ts: TS }],
      ['status', { v: 1, type: 'status', ts: TS, state: 'offline' }],
      ['bridge', { v: 1, type: 'bridge-status', ts: 0, state: 'offline', bridgeId: 'b', version: '', iceServers: [], maxMessageBytes: 1 }],
    ];
    for (const [channel, message] of minimal) expect(decode(channel, JSON.stringify(message))).toEqual(message);
  });

  it('ignores and keeps unknown fields (forward compatibility)', () => {
    const payload = variant(VALID.offer, { future: { nested: [1, 2] }, 'x-vendor': 'acme' });
    expect(decode('up', payload)).toMatchObject({ ...VALID.offer, future: { nested: [1, 2] } });
  });

  it('accepts boundary values', () => {
    expect(() => decode('up', variant(VALID.offer, { ts: Number.MAX_SAFE_INTEGER, seq: 2_147_483_647 }))).not.toThrow();
    expect(() => decode('up', variant(VALID.offer, { ts: 0, sessionId: 'a'.repeat(8) }))).not.toThrow();
    expect(() => decode('up', variant(VALID.offer, { sessionId: 'a'.repeat(64), sdp: 'x'.repeat(65536) }))).not.toThrow();
    expect(() => decode('up', variant(VALID.candidate, { sdpMLineIndex: 63, sdpMid: 'm'.repeat(32) }))).not.toThrow();
    expect(() => decode('bridge', variant(VALID['bridge-status'], { udpPortRange: [1, 65535] }))).not.toThrow();
  });

  it('accepts a payload of exactly maxBytes, counting UTF-8 bytes', () => {
    const text = encode({ ...VALID.status, model: 'Kamera Größe 1' });
    expect(() => decode('status', text, byteLength(text))).not.toThrow();
    expect(() => decode('status', utf8(text), byteLength(text))).not.toThrow();
  });
});

describe('decode: every error code it produces', () => {
  it('TALI_ERR_PAYLOAD_TOO_LARGE before parsing, in bytes not characters', () => {
    const text = encode({ ...VALID.status, model: 'Kamera Größe 1' }); // two 2-byte characters
    const err = expectCode('TALI_ERR_PAYLOAD_TOO_LARGE', 'status', text, text.length);
    expect(err.sessionId).toBeUndefined();
    expectCode('TALI_ERR_PAYLOAD_TOO_LARGE', 'status', utf8(text), byteLength(text) - 1);
    expectCode('TALI_ERR_PAYLOAD_TOO_LARGE', 'up', 'not even json', 3);
  });

  it.each([
    ['0xFF', [0xff]],
    ['an invalid byte inside a string', [...utf8('{"v":1,"type":"start","ts":1,"reason":"'), 0xff, ...utf8('"}')]],
    ['an overlong encoding of "/"', [...utf8('{"v":1,"type":"start","ts":1,"reason":"'), 0xc0, 0xaf, ...utf8('"}')]],
    ['a CESU-8 surrogate', [...utf8('{"v":1,"type":"start","ts":1,"reason":"'), 0xed, 0xa0, 0x80, ...utf8('"}')]],
    ['a truncated sequence', [...utf8('{"v":1,"type":"start","ts":1,"reason":"'), 0xe2, 0x82]],
  ])('TALI_ERR_MALFORMED_JSON for non-UTF-8 bytes: %s', (_what, bytes) => {
    expectCode('TALI_ERR_MALFORMED_JSON', 'down', new Uint8Array(bytes));
  });

  it.each(['', ' ', 'hello', '{', '{"v":1,}', "{'v':1}", '{"v":1}{"v":1}', 'NaN', '{"v":1,"type":"start","ts":1'])(
    'TALI_ERR_MALFORMED_JSON for non-JSON %j',
    (text) => {
      expectCode('TALI_ERR_MALFORMED_JSON', 'down', text);
    },
  );

  it.each(['[]', '[{"v":1,"type":"start","ts":1}]', 'null', '"start"', '42', 'true'])(
    'TALI_ERR_MALFORMED_JSON for JSON that is not an object: %s',
    (text) => {
      expectCode('TALI_ERR_MALFORMED_JSON', 'down', text);
    },
  );

  it('TALI_ERR_INVALID_MESSAGE for a missing "v", with the readable ref', () => {
    const err = expectCode('TALI_ERR_INVALID_MESSAGE', 'up', variant(VALID.offer, { v: undefined }));
    expect(err.message).toMatch(/"v"/);
    expect([err.sessionId, err.seq, err.type]).toEqual([SESSION, 1, 'offer']);
  });

  it.each([2, 0, '1', 1.5, null, true, [1], { v: 1 }])('TALI_ERR_UNSUPPORTED_VERSION for v = %j', (v) => {
    const err = expectCode('TALI_ERR_UNSUPPORTED_VERSION', 'up', variant(VALID.candidate, { v }));
    expect([err.sessionId, err.seq, err.type]).toEqual([SESSION, 2, 'candidate']);
  });

  it.each(['hello', 'OFFER', 'Offer', '', 'toString', 'constructor', '__proto__', 'hasOwnProperty', 42, null, ['offer']])(
    'TALI_ERR_UNKNOWN_TYPE for type = %j',
    (type) => {
      const err = expectCode('TALI_ERR_UNKNOWN_TYPE', 'up', variant(VALID.offer, { type }));
      expect([err.sessionId, err.seq]).toEqual([SESSION, 1]);
      expect(err.type).toBe(typeof type === 'string' ? type : undefined);
    },
  );

  it('TALI_ERR_UNKNOWN_TYPE for a missing type, and a long type is not echoed as ref', () => {
    expectCode('TALI_ERR_UNKNOWN_TYPE', 'up', variant(VALID.offer, { type: undefined }));
    expect(expectCode('TALI_ERR_UNKNOWN_TYPE', 'up', variant(VALID.offer, { type: 't'.repeat(65) })).type).toBeUndefined();
  });

  for (const type of TYPES) {
    const wrong = CHANNELS.filter((channel) => !CHANNELS_OF[type].includes(channel));
    it(`TALI_ERR_UNEXPECTED_TYPE for ${type} on ${wrong.join(', ')}`, () => {
      for (const channel of wrong) {
        const err = expectCode('TALI_ERR_UNEXPECTED_TYPE', channel, encode(VALID[type]));
        expect(err.type).toBe(type);
        if ('sessionId' in VALID[type]) expect(err.sessionId).toBe(SESSION);
      }
    });
  }

  // [type, changes, a field name the message must mention]
  const violations: [MessageType, Record<string, unknown>, string][] = [
    ['offer', { sdp: '' }, 'sdp'],
    ['offer', { sdp: undefined }, 'sdp'],
    ['offer', { sdp: 'x'.repeat(65537) }, 'sdp'],
    ['offer', { sdp: 42 }, 'sdp'],
    ['offer', { sessionId: 'a'.repeat(7) }, 'sessionId'],
    ['offer', { sessionId: 'a'.repeat(65) }, 'sessionId'],
    ['offer', { sessionId: 'abc.defgh' }, 'sessionId'],
    ['offer', { sessionId: 'abcdefgh/' }, 'sessionId'],
    ['offer', { sessionId: undefined }, 'sessionId'],
    ['offer', { seq: 0 }, 'seq'],
    ['offer', { seq: -1 }, 'seq'],
    ['offer', { seq: 2_147_483_648 }, 'seq'],
    ['offer', { seq: 1.5 }, 'seq'],
    ['offer', { seq: '1' }, 'seq'],
    ['offer', { seq: undefined }, 'seq'],
    ['offer', { ts: -1 }, 'ts'],
    ['offer', { ts: 1.5 }, 'ts'],
    ['offer', { ts: 2 ** 53 }, 'ts'],
    ['offer', { ts: '1764038401250' }, 'ts'],
    ['offer', { ts: undefined }, 'ts'],
    ['answer', { sdp: null }, 'sdp'],
    ['candidate', { candidate: '' }, 'candidate'],
    ['candidate', { candidate: `candidate:1 1 udp 1 192.0.2.1 9 typ host ${'x'.repeat(480)}` }, 'candidate'],
    ['candidate', { candidate: 7 }, 'candidate'],
    ['candidate', { sdpMid: 'm'.repeat(33) }, 'sdpMid'],
    ['candidate', { sdpMid: 0 }, 'sdpMid'],
    ['candidate', { sdpMLineIndex: 64 }, 'sdpMLineIndex'],
    ['candidate', { sdpMLineIndex: -1 }, 'sdpMLineIndex'],
    ['candidate', { sdpMLineIndex: '0' }, 'sdpMLineIndex'],
    ['candidate', { endOfCandidates: false, candidate: undefined }, 'endOfCandidates'],
    ['candidate', { endOfCandidates: 'true', candidate: undefined }, 'endOfCandidates'],
    ['bye', { reason: 'r'.repeat(65) }, 'reason'],
    ['bye', { reason: 1 }, 'reason'],
    ['error', { code: 'ERR_STALE' }, 'code'],
    ['error', { code: 'tali_err_stale' }, 'code'],
    ['error', { code: undefined }, 'code'],
    ['error', { message: 'm'.repeat(257) }, 'message'],
    ['error', { message: undefined }, 'message'],
    ['error', { ref: { type: 'offer', seq: 0 } }, 'seq'],
    ['error', { ref: { type: 't'.repeat(65) } }, 'type'],
    ['error', { ref: 'offer' }, 'ref'],
    ['error', { sessionId: 'short' }, 'sessionId'],
    ['start', { reason: 'r'.repeat(65) }, 'reason'],
    ['start', { ts: undefined }, 'ts'],
    ['status', { state: 'away' }, 'state'],
    ['status', { state: undefined }, 'state'],
    ['status', { model: 'm'.repeat(65) }, 'model'],
    ['status', { codecs: { video: Array(9).fill('H264') } }, 'video'],
    ['status', { codecs: { audio: ['x'.repeat(17)] } }, 'audio'],
    ['status', { codecs: ['H264'] }, 'codecs'],
    ['bridge-status', { maxMessageBytes: undefined }, 'maxMessageBytes'],
    ['bridge-status', { maxMessageBytes: 0 }, 'maxMessageBytes'],
    ['bridge-status', { bridgeId: undefined }, 'bridgeId'],
    ['bridge-status', { version: undefined }, 'version'],
    ['bridge-status', { iceServers: undefined }, 'iceServers'],
    ['bridge-status', { iceServers: Array(9).fill({ urls: 'stun:s' }) }, 'iceServers'],
    ['bridge-status', { iceServers: [{ urls: Array(9).fill('stun:s') }] }, 'urls'],
    ['bridge-status', { iceServers: [{ urls: `stun:${'s'.repeat(256)}` }] }, 'urls'],
    ['bridge-status', { iceServers: [{ username: 'u' }] }, 'urls'],
    ['bridge-status', { udpPortRange: [0, 10] }, 'udpPortRange'],
    ['bridge-status', { udpPortRange: [1, 65536] }, 'udpPortRange'],
    ['bridge-status', { udpPortRange: [1] }, 'udpPortRange'],
    ['bridge-status', { udpPortRange: [1, 2, 3] }, 'udpPortRange'],
  ];

  it.each(violations)('TALI_ERR_INVALID_MESSAGE for %s with %j', (type, changes, field) => {
    const channel = CHANNELS_OF[type][0] as Channel;
    const err = expectCode('TALI_ERR_INVALID_MESSAGE', channel, variant(VALID[type], changes));
    expect(err.message).toContain(field);
    expect(err.type).toBe(type);
    // The ref carries what is still readable and nothing that is not.
    const base = VALID[type] as { sessionId?: string; seq?: number };
    const readable = (key: 'sessionId' | 'seq') => (key in changes ? undefined : base[key]);
    if (type !== 'error') expect([err.sessionId, err.seq]).toEqual([readable('sessionId'), readable('seq')]);
  });

  it('TALI_ERR_INVALID_MESSAGE for a candidate with both or neither of candidate and endOfCandidates', () => {
    for (const changes of [{ endOfCandidates: true }, { candidate: undefined }]) {
      const err = expectCode('TALI_ERR_INVALID_MESSAGE', 'up', variant(VALID.candidate, changes));
      expect(err.message).toMatch(/exactly one/);
      expect([err.sessionId, err.seq, err.type]).toEqual([SESSION, 2, 'candidate']);
    }
  });

  it.each([
    'garbage',
    'candidate:',
    'candidate:1 1 udp 2122260223 cam.example.com 51234 typ host',
    'candidate:1 1 udp 2122260223 192.168.1.23 51234 typ bogus',
    'candidate:1 1 sctp 2122260223 192.168.1.23 51234 typ host',
    'candidate:1 1 udp 2122260223 192.168.1.23 51234 typ srflx raddr',
  ])('TALI_ERR_INVALID_CANDIDATE for %j, with the ref', (candidate) => {
    for (const channel of ['up', 'down'] as const) {
      const err = expectCode('TALI_ERR_INVALID_CANDIDATE', channel, variant(VALID.candidate, { candidate }));
      expect([err.sessionId, err.seq, err.type]).toEqual([SESSION, 2, 'candidate']);
    }
  });

  it('keeps every error message short enough for error.message (≤ 256) whatever the input', () => {
    const hostile: [Channel, string][] = [
      ['up', JSON.stringify({ v: 'v'.repeat(10_000), type: 'offer' })],
      ['up', JSON.stringify({ v: { deep: ['x'.repeat(10_000)] }, type: 'offer' })],
      ['up', JSON.stringify({ v: 1, type: 't'.repeat(10_000) })],
      ['up', variant(VALID.offer, { sdp: 'x'.repeat(70_000) })],
      ['up', variant(VALID.offer, { sessionId: 's'.repeat(10_000) })],
      ['up', variant(VALID.candidate, { candidate: `candidate:1 1 ${'u'.repeat(400)} 1 192.0.2.1 9 typ host` })],
      ['up', variant(VALID.candidate, { candidate: `candidate:1 1 udp 1 192.0.2.1 9 typ host ${'e'.repeat(400)}` })],
      ['up', variant(VALID.candidate, { candidate: `candidate:1 1 udp 1 ${'a'.repeat(400)} 9 typ host` })],
      ['up', variant(VALID.candidate, { candidate: `candidate:${'f'.repeat(400)} 1 udp 1 192.0.2.1 9 typ host` })],
    ];
    for (const [channel, payload] of hostile) {
      expect(rejection(channel, payload).message.length).toBeLessThanOrEqual(256);
    }
  });

  it('throws only ProtocolError, for random bytes and for mutated messages', () => {
    let seed = 0x2545f491;
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 2 ** 32;
    };
    const samples = TYPES.map((type) => encode(VALID[type]));
    for (let i = 0; i < 3000; i++) {
      let bytes: Uint8Array;
      if (i % 3 === 0) {
        bytes = Uint8Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256));
      } else {
        bytes = utf8(samples[i % samples.length] as string);
        for (let k = 0; k < 1 + Math.floor(random() * 4); k++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 128);
      }
      for (const channel of CHANNELS) {
        try {
          decode(channel, bytes, 16_384);
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
        }
      }
    }
  });
});

describe('encodeForDevice', () => {
  /** An answer whose encoding is exactly `size` bytes, padding the SDP with `fill` (1 or 2 UTF-8 bytes). */
  function answerOfBytes(size: number, fill: 'x' | 'é') {
    const base = byteLength(encode({ ...VALID.answer, sdp: '' }));
    const per = byteLength(fill);
    return { ...VALID.answer, sdp: fill.repeat(Math.floor((size - base) / per)) };
  }

  it('returns the same text as encode up to MAX_DOWN_BYTES', () => {
    expect(MAX_DOWN_BYTES).toBe(3840);
    const exact = answerOfBytes(MAX_DOWN_BYTES, 'x');
    expect(byteLength(encode(exact))).toBe(MAX_DOWN_BYTES);
    expect(encodeForDevice(exact)).toBe(encode(exact));
    expect(encodeForDevice(VALID.start)).toBe(encode(VALID.start));
  });

  it('throws RangeError one byte over', () => {
    const over = answerOfBytes(MAX_DOWN_BYTES, 'x');
    over.sdp += 'x';
    expect(() => encodeForDevice(over)).toThrow(RangeError);
  });

  it('counts bytes, not characters', () => {
    const wide = answerOfBytes(MAX_DOWN_BYTES + 200, 'é');
    expect(encode(wide).length).toBeLessThan(MAX_DOWN_BYTES);
    expect(() => encodeForDevice(wide)).toThrow(/devices get at most 3840/);
  });
});
