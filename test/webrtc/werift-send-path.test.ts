/**
 * tali's werift patch for the send path (patches/werift+0.25.2.patch, [werift-send-history], [werift-send-alloc];
 * docs/werift-patches.md): each case fails on werift without its change, and checks that what goes on the wire is
 * what went before (a lost packet is sent again with the same header and payload, or the same RTX wrapping).
 */
import { randomBytes } from 'node:crypto';
import {
  ntpTime,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
  useNACK,
  useTWCC,
  type RTCRtpSender,
} from 'werift';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectWeriftPair } from '../helpers/werift-pair.ts';

const vp8 = () => new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90_000, payloadType: 96, rtcpFeedback: [useNACK(), useTWCC()] });
const rtx = () => new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90_000, payloadType: 97, parameters: 'apt=96' });

/** Two werift peers on loopback, one sending video with NACK (and RTX when asked) to the other. */
const peers = (withRtx: boolean) => connectWeriftPair(() => (withRtx ? [vp8(), rtx()] : [vp8()]));

interface Sent {
  header: Buffer;
  payload: Buffer;
  ssrc: number;
  payloadType: number;
}

/**
 * Wraps the sender's DTLS transport: records every packet it encrypts (its header serialized, its payload) and drops
 * the first send of each sequence number in `drop`, as a lossy link would.
 */
function lossyWire(sender: RTCRtpSender, drop: Set<number>): Sent[] {
  const transport = sender.dtlsTransport as unknown as { sendRtp(payload: Buffer, header: RtpHeader): Promise<number> };
  const send = transport.sendRtp.bind(transport);
  const wire: Sent[] = [];
  transport.sendRtp = async (payload, header) => {
    wire.push({ header: header.serialize(header.serializeSize), payload: Buffer.from(payload), ssrc: header.ssrc, payloadType: header.payloadType });
    if (header.ssrc === sender.ssrc && drop.delete(header.sequenceNumber)) return payload.length;
    return send(payload, header);
  };
  return wire;
}

/** Payloads of a VP8 stream (a payload descriptor byte, then bytes), one frame per 4 packets, with a CSRC on some. */
const stream = (n: number): { header: RtpHeader; payload: Buffer }[] =>
  Array.from({ length: n }, (_, i) => ({
    header: new RtpHeader({ payloadType: 96, sequenceNumber: 1000 + i, timestamp: 3000 * (i >> 2), marker: i % 4 === 3, csrc: i % 5 === 0 ? [0x0a0b0c0d] : [] }),
    payload: Buffer.concat([Buffer.from([0x10, 0, i]), randomBytes(600)]),
  }));

describe('[werift-send-history] the NACK history of a sender', () => {
  afterEach(() => vi.restoreAllMocks());

  for (const withRtx of [false, true]) {
    it(`${withRtx ? 'with RTX (RFC 4588)' : 'without RTX'}: a lost packet is sent again as it went the first time, and the receiver gets its bytes`, async () => {
      const { sender, remote } = await peers(withRtx);
      const packets = stream(24);
      const lost = [1006, 1011]; // input numbers; the sender rewrites them by its offset
      const received = new Map<number, RtpPacket>();
      const all = new Promise<void>((resolve) =>
        remote.onReceiveRtp.subscribe((p) => {
          received.set(p.header.sequenceNumber, p);
          if (received.size === packets.length) resolve();
        }),
      );
      // The sender's offset is random: the numbers to drop are known once the first packet is out.
      const drop = new Set<number>();
      const wire = lossyWire(sender, drop);
      await sender.sendRtp(new RtpPacket(packets[0]!.header, packets[0]!.payload));
      const offset = (wire[0]!.header.readUInt16BE(2) - 1000) & 0xffff;
      const out = (seq: number) => (seq + offset) & 0xffff;
      for (const seq of lost) drop.add(out(seq));
      for (const { header, payload } of packets.slice(1)) await sender.sendRtp(new RtpPacket(header, payload));
      await all; // the receiver's NACKs (RFC 4585 §6.2.1) brought the two lost ones

      for (const seq of lost) {
        const sends = wire.filter((w) => w.header.readUInt16BE(2) === out(seq) && w.ssrc === sender.ssrc);
        const first = sends[0]!;
        if (!withRtx) {
          // The same header, byte for byte (marker, timestamp, CSRCs, every extension as first sent), and payload.
          expect(sends.length).toBeGreaterThanOrEqual(2);
          for (const again of sends.slice(1)) {
            expect(again.header.equals(first.header)).toBe(true);
            expect(again.payload.equals(first.payload)).toBe(true);
          }
        } else {
          // RFC 4588 §4: the RTX packet carries the original sequence number, then the original payload, on the RTX
          // SSRC and payload type, with the original's marker, timestamp, CSRCs and extensions.
          const wrapped = wire.filter((w) => w.ssrc === sender.rtxSsrc && w.payload.readUInt16BE(0) === out(seq));
          expect(wrapped.length).toBeGreaterThanOrEqual(1);
          for (const r of wrapped) {
            expect(r.payloadType).toBe(97);
            expect(r.payload.subarray(2).equals(first.payload)).toBe(true);
            const a = RtpHeader.deSerialize(Buffer.concat([first.header, first.payload]));
            const b = RtpHeader.deSerialize(Buffer.concat([r.header, r.payload]));
            expect({ marker: b.marker, timestamp: b.timestamp, csrc: b.csrc, extensions: b.extensions.map((e) => [e.id, e.payload.toString('hex')]) }).toEqual({
              marker: a.marker,
              timestamp: a.timestamp,
              csrc: a.csrc,
              extensions: a.extensions.map((e) => [e.id, e.payload.toString('hex')]),
            });
          }
        }
        const got = received.get(out(seq))!;
        const sent = packets[seq - 1000]!;
        expect(got.payload.equals(sent.payload)).toBe(true);
        expect({ marker: got.header.marker, csrc: got.header.csrc }).toEqual({ marker: sent.header.marker, csrc: sent.header.csrc });
      }
    });
  }

  it('holds no packet, header or extension object per send: numbers in typed arrays, the payloads by reference', async () => {
    const { sender } = await peers(false);
    const packets = stream(200);
    for (const { header, payload } of packets) await sender.sendRtp(new RtpPacket(header, payload));
    const history = (sender as unknown as { rtpHistory?: Record<string, unknown> }).rtpHistory;
    expect(history, 'the sender keeps its history in an RtpSendHistory').toBeDefined();
    expect((sender as unknown as { rtpCache?: unknown }).rtpCache).toBeUndefined();
    const kept = Object.values(history!).flatMap((v) => (Array.isArray(v) ? v : [v]));
    expect(kept.some((v) => v instanceof RtpPacket || v instanceof RtpHeader)).toBe(false);
    // The last 128 sent (RTP_HISTORY_SIZE), each payload the very Buffer the track sent: shared, not copied.
    const payloads = new Set(packets.slice(-128).map((p) => p.payload));
    const refs = (history!.payload as Buffer[]).filter((p) => p !== undefined);
    expect(refs.length).toBe(128);
    expect(refs.every((p) => payloads.has(p))).toBe(true);
    // The extensions as bytes (mid, abs-send-time, transport-cc fit the slot): no array kept for any of them.
    expect((history!.extensions as unknown[]).every((e) => e === undefined)).toBe(true);
  });

  it('keeps extensions too long for its slot as they were, and a replaced source (replaceRTP) empties it', async () => {
    const { sender } = await peers(false);
    const drop = new Set<number>();
    const wire = lossyWire(sender, drop);
    // RFC 8285 one-byte extensions of 16 bytes on IDs the SDP did not map: sent as given, beside werift's own.
    const big = [5, 6, 7, 8].map((id) => ({ id, payload: randomBytes(16) }));
    const header = new RtpHeader({ payloadType: 96, sequenceNumber: 7, timestamp: 90, marker: true, extensions: big });
    const payload = randomBytes(300);
    await sender.sendRtp(new RtpPacket(header, payload));
    const seq = wire[0]!.header.readUInt16BE(2);
    const history = (sender as unknown as { rtpHistory: { get(seq: number): RtpPacket | undefined } }).rtpHistory;
    const again = history.get(seq)!;
    expect(again.header.serialize(again.header.serializeSize).equals(wire[0]!.header)).toBe(true);
    expect(again.payload).toBe(payload);
    expect(history.get((seq + 1) & 0xffff)).toBeUndefined();
    sender.replaceRTP(again.header);
    expect(history.get(seq)).toBeUndefined();
  });
});

describe('[werift-send-alloc] no ArrayBuffer of its own per packet sent for the header and extensions', () => {
  afterEach(() => vi.restoreAllMocks());

  it('serializes the RTP header, the transport-cc and abs-send-time values and reads the NTP clock without Buffer.alloc, to the same bytes', async () => {
    const { sender } = await peers(false);
    const wire = lossyWire(sender, new Set());
    const packets = stream(20);
    await sender.sendRtp(new RtpPacket(packets[0]!.header, packets[0]!.payload)); // first-use work out of the count
    // Buffer.alloc calls made from the header's or an extension's serializer (a periodic RTCP report may run between
    // two sends: not counted).
    const original = Buffer.alloc.bind(Buffer);
    const fromSerializers: string[] = [];
    vi.spyOn(Buffer, 'alloc').mockImplementation((...args: Parameters<typeof Buffer.alloc>) => {
      const stack = new Error().stack ?? '';
      if (/RtpHeader\.serialize|serializeTransportWideCC|serializeAbsSendTime|ntpTime/.test(stack)) fromSerializers.push(stack);
      return original(...args);
    });
    for (const { header, payload } of packets.slice(1)) await sender.sendRtp(new RtpPacket(header, payload));
    vi.restoreAllMocks();
    expect(fromSerializers).toEqual([]);
    // The same bytes as a header of these fields serialized into a zero-filled buffer (the former code): what follows
    // the header in a larger buffer is zeroed.
    expect(wire.length).toBe(packets.length);
    for (const w of wire) {
      const h = RtpHeader.deSerialize(Buffer.concat([w.header, w.payload]));
      const fresh = h.serialize(w.header.length + 8);
      expect(fresh.subarray(0, w.header.length).equals(w.header)).toBe(true);
      expect(fresh.subarray(w.header.length).equals(Buffer.alloc(8))).toBe(true);
      // transport-cc is a 16-bit sequence, abs-send-time 24 bits (RFC 8285 one-byte elements of 2 and 3 bytes)
      expect(h.extensions.map((e) => e.payload.length).sort()).toEqual([1, 2, 3]);
    }
  });

  it('ntpTime gives the same 64-bit value as before (whole seconds; the digits after the point as an integer)', () => {
    const former = () => {
      const seconds = (performance.timeOrigin + performance.now() - Date.UTC(1900, 0, 1)) / 1e3;
      const [sec, msec] = seconds.toString().split('.').map(Number);
      const buf = Buffer.alloc(8);
      buf.writeUIntBE(sec!, 0, 4);
      buf.writeUIntBE(msec ?? 0, 4, 4);
      return buf.readBigUInt64BE();
    };
    const nows = [0, 0.5, 1, 123.456789, 1000, 86_400_000.25, 3_600_000.000001];
    // Whole seconds at timeOrigin + now: a value with no point at all.
    nows.push(Math.ceil((performance.timeOrigin - Date.UTC(1900, 0, 1)) / 1000) * 1000 - (performance.timeOrigin - Date.UTC(1900, 0, 1)));
    for (const at of nows) {
      vi.spyOn(performance, 'now').mockReturnValue(at);
      expect(ntpTime()).toBe(former());
      vi.restoreAllMocks();
    }
  });
});
