/**
 * tali's werift patch for the per-packet path (patches/werift+0.25.2.patch, [werift-srtp-keyobject],
 * [werift-rtp-fast], [werift-srtp-alloc], [werift-rtp-parse-once], [werift-srtp-payload], [werift-rtp-clone],
 * [werift-rtp-stats], [werift-rtp-ext-parse], [werift-rtp-header-new], [werift-vp8-picture-id];
 * docs/werift-patches.md): each case fails on an
 * unpatched werift (but the rollover guard, which holds either way). The behaviour must not change, so every case also
 * checks the result.
 */
import { createHook } from 'node:async_hooks';
import { KeyObject, randomBytes } from 'node:crypto';
import {
  Event,
  MediaStreamTrack,
  ProtectionProfileAeadAes128Gcm,
  ProtectionProfileAes128CmHmacSha1_80,
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RtpHeader,
  RtpPacket,
  rtpHeaderExtensionsParser,
  RTP_EXTENSION_URI,
  SrtpSession,
  useNACK,
  useTWCC,
  Vp8RtpPayload,
  Vp9RtpPayload,
} from 'werift';
import { afterEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { connectWeriftPair } from '../helpers/werift-pair.ts';

function sessions(profile: number): { sender: SrtpSession; receiver: SrtpSession } {
  const keyLength = 16;
  const saltLength = profile === ProtectionProfileAeadAes128Gcm ? 12 : 14;
  const a = { key: randomBytes(keyLength), salt: randomBytes(saltLength) };
  const b = { key: randomBytes(keyLength), salt: randomBytes(saltLength) };
  const keys = (local: typeof a, remote: typeof a) => ({
    localMasterKey: local.key,
    localMasterSalt: local.salt,
    remoteMasterKey: remote.key,
    remoteMasterSalt: remote.salt,
  });
  return {
    sender: new SrtpSession({ keys: keys(a, b), profile: profile as never }),
    receiver: new SrtpSession({ keys: keys(b, a), profile: profile as never }),
  };
}

type Cipher = { srtpSessionKey: unknown; srtcpSessionKey: unknown; srtpSessionAuthTag?: unknown; srtcpSessionAuthTag?: unknown };
const cipherOf = (session: SrtpSession) => (session as unknown as { localContext: { cipher: Cipher } }).localContext.cipher;

describe('[werift-srtp-keyobject] SRTP session keys are KeyObjects', () => {
  for (const [name, profile] of [
    ['AEAD_AES_128_GCM', ProtectionProfileAeadAes128Gcm],
    ['AES_CM_128_HMAC_SHA1_80', ProtectionProfileAes128CmHmacSha1_80],
  ] as const) {
    it(`${name}: made once per session (a Buffer key costs Node two caught exceptions per packet), and packets still decrypt`, () => {
      const { sender, receiver } = sessions(profile);
      const cipher = cipherOf(sender);
      expect(cipher.srtpSessionKey).toBeInstanceOf(KeyObject);
      expect(cipher.srtcpSessionKey).toBeInstanceOf(KeyObject);
      if (profile === ProtectionProfileAes128CmHmacSha1_80) {
        expect(cipher.srtpSessionAuthTag).toBeInstanceOf(KeyObject);
        expect(cipher.srtcpSessionAuthTag).toBeInstanceOf(KeyObject);
      }
      const payload = randomBytes(1100);
      const header = new RtpHeader({ payloadType: 96, sequenceNumber: 4242, timestamp: 90_000, ssrc: 0x11223344, marker: true });
      const decrypted = receiver.decrypt(sender.encrypt(payload, header));
      expect(Buffer.compare(decrypted.subarray(decrypted.length - payload.length), payload)).toBe(0);
      // Tampering is still caught: a flipped bit in the payload fails authentication.
      const tampered = sender.encrypt(payload, new RtpHeader({ ...header, sequenceNumber: 4243 }));
      tampered[20]! ^= 1;
      expect(() => receiver.decrypt(tampered)).toThrow();
    });
  }
});

describe('[werift-rtp-fast] the per-packet path', () => {
  afterEach(() => vi.restoreAllMocks());

  it('parses an RTP header (RFC 3550 §5.1) without building strings', () => {
    const raw = Buffer.alloc(12 + 8 + 4);
    raw[0] = 0b1010_0010; // V=2, P=1, X=0, CC=2
    raw[1] = 0x80 | 111; // M=1, PT=111
    raw.writeUInt16BE(65_535, 2);
    raw.writeUInt32BE(0xfedcba98, 4);
    raw.writeUInt32BE(0x01020304, 8);
    raw.writeUInt32BE(7, 12);
    raw.writeUInt32BE(8, 16);
    raw[raw.length - 1] = 4; // padding length
    const toString = vi.spyOn(Number.prototype, 'toString');
    const header = RtpHeader.deSerialize(raw);
    expect(toString).not.toHaveBeenCalled();
    expect(header).toMatchObject({ version: 2, padding: true, extension: false, csrcLength: 2, marker: true, payloadType: 111 });
    expect(header).toMatchObject({ sequenceNumber: 65_535, timestamp: 0xfedcba98, ssrc: 0x01020304, csrc: [7, 8] });
    const plain = RtpPacket.deSerialize(Buffer.from([0x80, 96, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xaa]));
    expect(plain.header).toMatchObject({ version: 2, padding: false, extension: false, csrcLength: 0, marker: false, payloadType: 96 });
  });

  it('emits to synchronous listeners without creating a promise per emit', () => {
    const event = new Event<[number]>();
    const seen: number[] = [];
    event.subscribe((n) => seen.push(n));
    let promises = 0;
    const hook = createHook({ init: (_id, type) => void (type === 'PROMISE' && promises++) }).enable();
    try {
      for (let i = 0; i < 100; i++) event.execute(i);
    } finally {
      hook.disable();
    }
    expect(seen).toHaveLength(100);
    expect(promises).toBe(0);
  });
});

/** Counts promises created while `fn` runs (async_hooks sees every one, also those of async functions). */
function promisesDuring(fn: () => void): number {
  let promises = 0;
  const hook = createHook({ init: (_id, type) => void (type === 'PROMISE' && promises++) }).enable();
  try {
    fn();
  } finally {
    hook.disable();
  }
  return promises;
}

describe('[werift-srtp-alloc] SRTP decryption without a buffer of its own or a state copy per packet', () => {
  afterEach(() => vi.restoreAllMocks());
  const header = (sequenceNumber: number) => new RtpHeader({ payloadType: 96, sequenceNumber, timestamp: 3000, ssrc: 0x5eed, marker: false });

  it('AEAD_AES_128_GCM: decrypts across a sequence-number wrap (RFC 3711 §3.3.1 ROC) with no Buffer.alloc per packet', () => {
    const { sender, receiver } = sessions(ProtectionProfileAeadAes128Gcm);
    const seqs = [65_530, 65_531, 65_532, 65_533, 65_534, 65_535, 0, 1, 2, 3];
    const payloads = seqs.map(() => randomBytes(900));
    const packets = seqs.map((seq, i) => sender.encrypt(payloads[i]!, header(seq)));
    receiver.decrypt(packets[0]!); // the first packet of a session sets up its per-cipher IV buffer
    const alloc = vi.spyOn(Buffer, 'alloc');
    const out = packets.slice(1).map((p) => receiver.decrypt(p));
    expect(alloc).not.toHaveBeenCalled();
    out.forEach((d, i) => {
      expect(d.readUInt16BE(2)).toBe(seqs[i + 1]);
      expect(Buffer.compare(d.subarray(12), payloads[i + 1]!)).toBe(0);
    });
  });

  it('a packet that fails authentication changes no rollover state: the next one after the wrap still decrypts', () => {
    const { sender, receiver } = sessions(ProtectionProfileAeadAes128Gcm);
    receiver.decrypt(sender.encrypt(randomBytes(100), header(65_535)));
    const wrapped = sender.encrypt(randomBytes(100), header(0)); // ROC 1
    const forged = Buffer.from(wrapped);
    forged[forged.length - 1]! ^= 1;
    expect(() => receiver.decrypt(forged)).toThrow(/authenticate/);
    const payload = randomBytes(100);
    const next = receiver.decrypt(sender.encrypt(payload, header(1)));
    expect(Buffer.compare(next.subarray(12), payload)).toBe(0);
    expect(receiver.decrypt(wrapped).readUInt16BE(2)).toBe(0);
  });
});

describe('[werift-rtp-parse-once] one parse of each RTP header', () => {
  afterEach(() => vi.restoreAllMocks());

  it('parses CSRCs and RFC 8285 one-byte extensions without a Buffer view per field', () => {
    // V=2 X=1 CC=2, PT 96; two CSRCs; one-byte extension block: id 1 (1 byte), id 3 (3 bytes), 2 bytes of padding.
    const raw = Buffer.from([
      0x92, 96, 0x12, 0x34, 0, 0, 0x0b, 0xb8, 0, 0, 0x5e, 0xed,
      0, 0, 0, 7, 0, 0, 0, 8,
      0xbe, 0xde, 0, 2, 0x10, 0xaa, 0x32, 1, 2, 3, 0, 0,
      0xff,
    ]);
    const subarray = vi.spyOn(Buffer.prototype, 'subarray');
    const header = RtpHeader.deSerialize(raw);
    expect(subarray).toHaveBeenCalledTimes(2); // the two extension payloads, nothing else
    expect(header).toMatchObject({ csrcLength: 2, csrc: [7, 8], extension: true, extensionProfile: 0xbede, extensionLength: 8, payloadOffset: 32 });
    expect(header.extensions.map((e) => [e.id, [...e.payload]])).toEqual([
      [1, [0xaa]],
      [3, [1, 2, 3]],
    ]);
  });

  it('between two werift peers: every packet arrives decrypted, in order, with its extensions, parsed once', async () => {
    const codec = () => new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90_000, payloadType: 96, rtcpFeedback: [useNACK(), useTWCC()] });
    const { sender, remote } = await connectWeriftPair(() => [codec()]);

    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.concat([Buffer.from([0x10, 0, i]), randomBytes(700)]));
    const got: RtpPacket[] = [];
    const all = new Promise<void>((resolve) => remote.onReceiveRtp.subscribe((p) => void (got.push(p) === payloads.length && resolve())));
    const parse = vi.spyOn(RtpHeader, 'deSerialize');
    for (const [i, payload] of payloads.entries()) {
      await sender.sendRtp(new RtpPacket(new RtpHeader({ payloadType: 96, sequenceNumber: i, timestamp: 3000 * (i >> 2), marker: i % 4 === 3 }), payload));
    }
    await all;
    expect(parse).toHaveBeenCalledTimes(payloads.length); // was twice per packet: to decrypt, then the packet
    const seqs = got.map((p) => p.header.sequenceNumber);
    expect(seqs.every((s, i) => i === 0 || s === ((seqs[i - 1]! + 1) & 0xffff))).toBe(true);
    got.forEach((p, i) => {
      expect(Buffer.compare(p.payload, payloads[i]!)).toBe(0);
      expect(p.header).toMatchObject({ payloadType: 96, marker: i % 4 === 3, paddingSize: 0 });
      expect(p.header.extensions.length).toBeGreaterThan(0); // mid, abs-send-time, transport-cc: as werift sends them
    });
  });
});

describe('[werift-rtp-fast] the receiver per packet', () => {
  afterEach(() => vi.restoreAllMocks());

  it('starts its RTCP loop once and splits no codec name per packet; packets still reach the track in order', async () => {
    const vp8 = new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90_000, payloadType: 96, rtcpFeedback: [useNACK(), useTWCC()] });
    const pc = new RTCPeerConnection({ codecs: { video: [vp8] } });
    onTestFinished(() => pc.close());
    const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    const receiver = transceiver.receiver as unknown as {
      prepareReceive(params: { codecs: RTCRtpCodecParameters[]; encodings: unknown[] }): void;
      addTrack(track: MediaStreamTrack): void;
      handleRtpBySsrc(packet: RtpPacket, extensions: Record<string, unknown>): void;
      receiverTWCC?: unknown;
    };
    receiver.prepareReceive({ codecs: [vp8], encodings: [] });
    receiver.receiverTWCC = { handleTWCC: () => {} }; // no transport to send TWCC feedback on
    const track = new MediaStreamTrack({ kind: 'video', ssrc: 0x5eed, remote: true });
    receiver.addTrack(track);
    const seen: number[] = [];
    track.onReceiveRtp.subscribe((p) => void seen.push(p.header.sequenceNumber));
    const packet = (seq: number) => new RtpPacket(new RtpHeader({ payloadType: 96, sequenceNumber: seq, timestamp: 0, ssrc: 0x5eed }), Buffer.from([0x10, 0, 0]));
    receiver.handleRtpBySsrc(packet(100), {}); // the first packet starts the RTCP loop
    const split = vi.spyOn(String.prototype, 'split');
    const promises = promisesDuring(() => {
      for (let seq = 101; seq <= 150; seq++) receiver.handleRtpBySsrc(packet(seq), {});
    });
    expect(promises).toBe(0);
    expect(split).not.toHaveBeenCalled();
    expect(seen).toEqual(Array.from({ length: 51 }, (_, i) => 100 + i));
  });
});

describe('[werift-srtp-payload] decryptPacket returns the decipher\'s plaintext as the payload', () => {
  afterEach(() => vi.restoreAllMocks());
  /** Added by [werift-rtp-parse-once]: not in werift's typings. */
  const decryptPacket = (session: SrtpSession, packet: Buffer) => (session as unknown as { decryptPacket(b: Buffer): RtpPacket }).decryptPacket(packet);
  const header = (sequenceNumber: number, padding = false) =>
    new RtpHeader({ payloadType: 96, sequenceNumber, timestamp: 3000, ssrc: 0x5eed, marker: true, padding });

  for (const [name, profile] of [
    ['AEAD_AES_128_GCM', ProtectionProfileAeadAes128Gcm],
    ['AES_CM_128_HMAC_SHA1_80', ProtectionProfileAes128CmHmacSha1_80],
  ] as const) {
    it(`${name}: no copy of header + payload per packet; padding (RFC 3550 §5.1) still removed and checked`, () => {
      const { sender, receiver } = sessions(profile);
      const payloads = Array.from({ length: 8 }, () => randomBytes(1000));
      const packets = payloads.map((p, i) => sender.encrypt(p, header(i)));
      decryptPacket(receiver, packets[0]!); // the first packet of a session sets up its state
      const concat = vi.spyOn(Buffer, 'concat');
      const out = packets.slice(1).map((p) => decryptPacket(receiver, p));
      expect(concat).not.toHaveBeenCalled();
      out.forEach((p, i) => {
        expect(Buffer.compare(p.payload, payloads[i + 1]!)).toBe(0);
        expect(p.header).toMatchObject({ sequenceNumber: i + 1, marker: true, paddingSize: 0, payloadOffset: 12 });
      });
      vi.restoreAllMocks();

      // 4 bytes of padding, the last one their count: taken off the payload, counted in the header.
      const body = randomBytes(96);
      const padded = decryptPacket(receiver, sender.encrypt(Buffer.concat([body, Buffer.from([0, 0, 0, 4])]), header(9, true)));
      expect(Buffer.compare(padded.payload, body)).toBe(0);
      expect(padded.header).toMatchObject({ padding: true, paddingSize: 4 });
      // A padding count past the payload (or 0) is refused as the unpatched path refused it, after authentication.
      for (const [seq, count] of [[10, 200], [11, 0]] as const) {
        const bad = sender.encrypt(Buffer.concat([randomBytes(20), Buffer.from([count])]), header(seq, true));
        expect(() => decryptPacket(receiver, bad)).toThrow(/authenticate/);
      }
      // decrypt() (the whole packet) is unchanged.
      const whole = receiver.decrypt(sender.encrypt(body, header(12)));
      expect(Buffer.compare(whole.subarray(12), body)).toBe(0);
      expect(whole.readUInt16BE(2)).toBe(12);
    });
  }
});

describe('[werift-rtp-clone] [werift-rtp-stats] the receiver per packet, statistics kept', () => {
  afterEach(() => vi.restoreAllMocks());

  it('clones each packet for its track field by field, without a props object', () => {
    const raw = Buffer.from([0x92, 96, 0x12, 0x34, 0, 0, 0x0b, 0xb8, 0, 0, 0x5e, 0xed, 0, 0, 0, 7, 0, 0, 0, 8, 0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0, 0xff]);
    const packet = RtpPacket.deSerialize(raw);
    const assign = vi.spyOn(Object, 'assign');
    const copy = packet.clone();
    // Unpatched: new RtpHeader({ ...header }), i.e. Object.assign(header, a copy with every field).
    expect(assign.mock.calls.some(([, props]) => (props as { sequenceNumber?: number } | undefined)?.sequenceNumber !== undefined)).toBe(false);
    expect(copy.header).toBeInstanceOf(RtpHeader);
    expect(copy.header).not.toBe(packet.header);
    expect({ ...copy.header }).toEqual({ ...packet.header });
    expect(copy.payload).toBe(packet.payload);
    expect(Buffer.compare(copy.serialize(), packet.serialize())).toBe(0);
    copy.header.sequenceNumber = 1; // a track listener's change stays its own
    expect(packet.header.sequenceNumber).toBe(0x1234);
  });

  it('reads one clock per packet and makes no string of it; getStats (inbound-rtp) and the RTCP receiver report figures stay RFC 3550 §6.4.1 / A.3 / A.8', async () => {
    const vp8 = new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90_000, payloadType: 96, rtcpFeedback: [useNACK()] });
    const pc = new RTCPeerConnection({ codecs: { video: [vp8] } });
    onTestFinished(() => pc.close());
    const transceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    type Stream = { packets_received: number; packets_lost: number; fraction_lost: number; jitter: number; max_seq: number; lastPacketReceivedTimestamp: number };
    const receiver = transceiver.receiver as unknown as {
      prepareReceive(params: { codecs: RTCRtpCodecParameters[]; encodings: unknown[] }): void;
      addTrack(track: MediaStreamTrack): void;
      handleRtpBySsrc(packet: RtpPacket, extensions: Record<string, unknown>): void;
      remoteStreams: Record<number, Stream>;
      collectStats(timestamp: number): { type: string; packetsReceived?: number; packetsLost?: number; jitter?: number; bytesReceived?: number; headerBytesReceived?: number; lastPacketReceivedTimestamp?: number }[];
      rtcpRunning: boolean;
    };
    receiver.prepareReceive({ codecs: [vp8], encodings: [] });
    receiver.rtcpRunning = true; // no transport to send reports on: the report's figures are read below
    const track = new MediaStreamTrack({ kind: 'video', ssrc: 0x5eed, remote: true });
    receiver.addTrack(track);
    const seen: number[] = [];
    track.onReceiveRtp.subscribe((p) => void seen.push(p.header.sequenceNumber));

    // Arrival at exactly the RTP timestamps' pace (30 fps, 90 kHz), then one frame 10 ms late; sequence 5 lost.
    let nowMs = 1_000;
    vi.spyOn(performance, 'now').mockImplementation(() => nowMs);
    const dateNow = vi.spyOn(Date, 'now');
    const parseInt = vi.spyOn(Number, 'parseInt');
    const payload = Buffer.alloc(500, 1);
    const frames = [0, 1, 2, 3, 4, 6, 7, 8];
    for (const [k, seq] of frames.entries()) {
      nowMs = 1_000 + seq * (1000 / 30) + (k === frames.length - 1 ? 10 : 0);
      receiver.handleRtpBySsrc(new RtpPacket(new RtpHeader({ payloadType: 96, sequenceNumber: seq, timestamp: seq * 3000, ssrc: 0x5eed }), payload), {});
    }
    expect(dateNow).not.toHaveBeenCalled(); // unpatched: Date.now() for the arrival time as well
    expect(parseInt).not.toHaveBeenCalled(); // unpatched: the arrival in clock units truncated through a string
    expect(seen).toEqual(frames);

    const stream = receiver.remoteStreams[0x5eed]!;
    // Jitter: |D| = 10 ms = 900 ticks once, J = 900/16 (werift keeps it ×16: 900 >> 4 = 56).
    expect(stream).toMatchObject({ packets_received: 8, max_seq: 8, packets_lost: 1, jitter: 56 });
    expect(stream.fraction_lost).toBe(Math.floor((1 << 8) / 9)); // 1 of 9 expected
    expect(stream.lastPacketReceivedTimestamp).toBeCloseTo(performance.timeOrigin + nowMs, 6);
    const inbound = receiver.collectStats(123).find((s) => s.type === 'inbound-rtp')!;
    expect(inbound).toMatchObject({ packetsReceived: 8, packetsLost: 1, bytesReceived: 8 * 500, headerBytesReceived: 8 * 12 });
    expect(inbound.jitter).toBeCloseTo(56 / 90_000, 9);
    expect(inbound.lastPacketReceivedTimestamp).toBeCloseTo(performance.timeOrigin + nowMs, 6);
  });
});

describe('[werift-rtp-ext-parse] [werift-rtp-header-new] [werift-vp8-picture-id] less garbage per received packet', () => {
  afterEach(() => vi.restoreAllMocks());

  it('parses the header extensions (RFC 8285) into one object, with no array or object per extension', () => {
    const uris = { 1: RTP_EXTENSION_URI.sdesMid, 2: RTP_EXTENSION_URI.absSendTime, 3: RTP_EXTENSION_URI.transportWideCC };
    const extensions = [
      { id: 1, payload: Buffer.from('v0') },
      { id: 2, payload: Buffer.from([0x12, 0x34, 0x56]) },
      { id: 3, payload: Buffer.from([0xab, 0xcd]) },
      { id: 9, payload: Buffer.from([7]) },
    ];
    const map = vi.spyOn(Array.prototype, 'map');
    const reduce = vi.spyOn(Array.prototype, 'reduce');
    const parsed = rtpHeaderExtensionsParser(extensions, uris);
    expect(map).not.toHaveBeenCalled(); // unpatched: extensions.map(…).reduce(…), and bufferReader's map for abs-send-time
    expect(reduce).not.toHaveBeenCalled();
    expect(parsed).toEqual({
      [RTP_EXTENSION_URI.sdesMid]: 'v0',
      [RTP_EXTENSION_URI.absSendTime]: 0x123456,
      [RTP_EXTENSION_URI.transportWideCC]: 0xabcd,
      unknown: extensions[3]!.payload,
    });
    expect(rtpHeaderExtensionsParser([], uris)).toEqual({});
  });

  it('makes a header without props with no Object.assign: SRTP decryption and the clone per track make none', () => {
    const { sender, receiver } = sessions(ProtectionProfileAeadAes128Gcm);
    const packets = [1, 2, 3].map((seq) => sender.encrypt(randomBytes(500), new RtpHeader({ payloadType: 96, sequenceNumber: seq, timestamp: 3000, ssrc: 0x5eed })));
    const decryptPacket = (b: Buffer) => (receiver as unknown as { decryptPacket(b: Buffer): RtpPacket }).decryptPacket(b);
    decryptPacket(packets[0]!);
    const assign = vi.spyOn(Object, 'assign');
    const got = packets.slice(1).map((b) => decryptPacket(b).clone());
    expect(assign).not.toHaveBeenCalled(); // unpatched: Object.assign(this, {}) in every new RtpHeader()
    expect(got.map((p) => p.header.sequenceNumber)).toEqual([2, 3]);
    expect(got[0]!.header).toMatchObject({ version: 2, payloadType: 96, timestamp: 3000, ssrc: 0x5eed, csrc: [], extensions: [] });
    vi.restoreAllMocks();
    expect(new RtpHeader({ sequenceNumber: 7, marker: true })).toMatchObject({ sequenceNumber: 7, marker: true, version: 2 });
    // A header that does not parse is still refused as an unauthenticated packet (was wrapAuthenticationError's closure).
    const broken = Buffer.from(packets[1]!);
    broken[0] = 0x90; // X=1 with no room for the extension header
    broken.writeUInt16BE(0xffff, 14);
    expect(() => decryptPacket(broken)).toThrow(/authenticate/);
  });

  it('reads a 15-bit VP8 / VP9 PictureID (RFC 7741 §4.2, M=1) without strings', () => {
    // VP8: X=1 S=1 PID 0; I=1; M=1, PictureID 0x5a3c; then the VP8 payload header of a keyframe.
    const vp8 = Buffer.from([0x90, 0x80, 0x80 | 0x5a, 0x3c, 0x10, 0x02, 0x00]);
    // VP9: I=1 B=1; M=1, PictureID 0x1234.
    const vp9 = Buffer.from([0x88, 0x80 | 0x12, 0x34, 0x00, 0x00]);
    const parseInt = vi.spyOn(Number, 'parseInt');
    const toString = vi.spyOn(Number.prototype, 'toString');
    const a = Vp8RtpPayload.deSerialize(vp8);
    const b = Vp9RtpPayload.deSerialize(vp9);
    expect(parseInt).not.toHaveBeenCalled();
    expect(toString).not.toHaveBeenCalled();
    expect(a).toMatchObject({ xBit: 1, sBit: 1, iBit: 1, mBit: 1, pictureId: 0x5a3c });
    expect(b).toMatchObject({ iBit: 1, m: 1, pictureId: 0x1234 });
    // M=0: a 7-bit PictureID, as before.
    expect(Vp8RtpPayload.deSerialize(Buffer.from([0x90, 0x80, 0x25, 0x10, 0x02, 0x00])).pictureId).toBe(0x25);
  });
});
