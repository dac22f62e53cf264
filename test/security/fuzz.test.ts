/**
 * Property-based fuzzing (fast-check) of what hostile bytes reach first: the protocol decoder, the broker's packet
 * rules, and the path from a received offer to werift (a real Session and Peer). Each may refuse, with its own
 * error type; none may throw anything else, hang, or leave a peer open.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Session } from '../../src/answerer/session.ts';
import { checkConnect, checkPacket, readFixedHeader } from '../../src/broker/packet-rules.ts';
import { decode } from '../../src/protocol/codec.ts';
import { ProtocolError } from '../../src/protocol/errors.ts';
import type { Offer } from '../../src/protocol/messages.ts';
import { createOfferer } from '../helpers/offerer.ts';

const json = fc.jsonValue({ maxDepth: 3 });
const nearMessage = fc.record(
  {
    v: fc.oneof(fc.constant(1), json),
    type: fc.oneof(fc.constantFrom('offer', 'candidate', 'bye', 'error', 'answer', 'status', ''), fc.string()),
    sessionId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/), fc.string(), json),
    seq: fc.oneof(fc.integer({ min: -2, max: 2 ** 31 + 2 }), json),
    ts: fc.oneof(fc.constant(Date.now()), fc.integer(), fc.double(), json),
    sdp: fc.oneof(fc.string({ maxLength: 200 }), json),
    candidate: fc.oneof(fc.constant('candidate:1 1 udp 2130706431 192.0.2.9 5000 typ host'), fc.string({ maxLength: 100 })),
    endOfCandidates: fc.oneof(fc.constant(true), json),
    code: fc.oneof(fc.constant('TALI_ERR_INTERNAL'), fc.string()),
    message: fc.string(),
    reason: fc.string(),
  },
  { requiredKeys: [] },
);
const payloads = fc.oneof(
  fc.uint8Array({ maxLength: 512 }),
  fc.string({ maxLength: 512 }),
  json.map((v) => JSON.stringify(v) ?? ''),
  nearMessage.map((m) => JSON.stringify(m)),
);

function onlyProtocolErrors(run: () => unknown): void {
  try {
    run();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
  }
}

describe('fuzz', () => {
  it('decode(): a typed message or a ProtocolError, for 6000 payloads on every channel', () => {
    fc.assert(
      fc.property(payloads, fc.constantFrom('up', 'status', 'down', 'bridge', 'metrics') as fc.Arbitrary<'up'>, (payload, channel) => {
        onlyProtocolErrors(() => {
          const message = decode(channel, typeof payload === 'string' ? payload : Buffer.from(payload), 16_384);
          expect(typeof message.type).toBe('string');
        });
      }),
      { numRuns: 6000 },
    );
  });

  it('packet rules: every byte string gives a verdict, never an exception (10 000 packets)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 }), fc.uint8Array({ maxLength: 300 }), (type, flags, body) => {
        const bytes = Buffer.from(body);
        const verdict = type === 1 ? checkConnect(flags, bytes) : checkPacket(type, flags, bytes);
        expect(typeof verdict.ok).toBe('boolean');
        expect(readFixedHeader(Buffer.concat([Buffer.from([(type << 4) | flags]), bytes]))).toBeDefined();
      }),
      { numRuns: 10_000 },
    );
  });

  it('offer → werift: mutated real offers are answered or refused with a code, and every peer closes (1000 offers)', async () => {
    const { sdp } = await createOfferer({ video: 'VP8', audio: 'PCMU' });
    const lines = sdp.split('\r\n').filter(Boolean);
    const mutation = fc.array(
      fc.oneof(
        fc.record({ op: fc.constant('drop' as const), at: fc.nat() }),
        fc.record({ op: fc.constant('dup' as const), at: fc.nat() }),
        fc.record({ op: fc.constant('garble' as const), at: fc.nat(), text: fc.string({ maxLength: 40 }) }),
        fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('m=video 9 UDP/TLS/RTP/SAVPF 96', 'a=rtpmap:96 VP8/90000', 'a=group:BUNDLE 0 1 2', 'a=mid:', 'a=ssrc:1 cname:x', 'a=setup:active', 'c=IN IP6 ::')) }),
      ),
      { maxLength: 6 },
    );
    const logger = pino({ level: 'silent' });
    let answered = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(mutation, async (mutations) => {
        const mutated = [...lines];
        for (const m of mutations) {
          const at = m.at % Math.max(1, mutated.length);
          if (m.op === 'drop') mutated.splice(at, 1);
          else if (m.op === 'dup') mutated.splice(at, 0, mutated[at] ?? '');
          else if (m.op === 'garble') mutated[at] = `${(mutated[at] ?? '').slice(0, 2)}${m.text}`;
          else mutated.splice(at, 0, m.text);
        }
        const sent: unknown[] = [];
        const session = new Session({ deviceId: 'cam1', sessionId: 'fuzz-session', peer: { iceServers: [] }, connectTimeoutMs: 60_000, mediaTimeoutMs: 60_000, logger, send: (p) => sent.push(p) });
        const offer: Offer = { v: 1, type: 'offer', sessionId: 'fuzz-session', seq: 1, ts: Date.now(), sdp: `${mutated.join('\r\n')}\r\n` };
        const refusal = await session.open(offer);
        if (refusal) {
          expect(['TALI_ERR_INVALID_SDP', 'TALI_ERR_NO_COMMON_CODEC'], refusal.message).toContain(refusal.code);
          refused++;
        } else {
          // Answered; or the peer failed while answering and the session closed itself with a bye.
          const types = sent.map((m) => (m as { type: string }).type);
          expect(types.includes('answer') || (session.state === 'closed' && types.includes('bye')), types.join()).toBe(true);
          answered++;
        }
        await session.close('normal');
        expect(session.state).toBe('closed');
      }),
      { numRuns: 1000 },
    );
    expect(answered).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  }, 120_000);
});
