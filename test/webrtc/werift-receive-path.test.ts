/**
 * tali's werift patch for the per-packet path (patches/werift+0.25.2.patch, [werift-srtp-keyobject] and
 * [werift-rtp-fast]; docs/werift-patches.md): each case fails on an unpatched werift. The behaviour must not change,
 * so every case also checks the result.
 */
import { createHook } from 'node:async_hooks';
import { KeyObject, randomBytes } from 'node:crypto';
import {
  Event,
  ProtectionProfileAeadAes128Gcm,
  ProtectionProfileAes128CmHmacSha1_80,
  RtpHeader,
  RtpPacket,
  SrtpSession,
} from 'werift';
import { afterEach, describe, expect, it, vi } from 'vitest';

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
