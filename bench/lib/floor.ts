/**
 * The floor of receiving a camera packet in Node, measured in the same run as what it is compared with: a bare loop
 * that does only what every SRTP receiver must, per packet of ~1 100 bytes: parse the RTP header (RFC 3550 §5.1),
 * build the AEAD nonce (RFC 7714 §8.1) and decrypt-and-verify with AES-128-GCM (the profile werift negotiates first),
 * one `createDecipheriv` per packet as Node's API requires. Keyed with a KeyObject made once per session; the same
 * loop keyed with the raw Buffer shows what Node 24 charges for that (see docs/werift-patches.md).
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

export interface FloorResult {
  /** CPU per packet, µs, key as a KeyObject (median of the passes). */
  usPerPacket: number;
  /** The same with the key passed as a Buffer on every packet. */
  usPerPacketBufferKey: number;
  payloadBytes: number;
}

export interface Packet {
  data: Buffer;
}

export function makePackets(n: number, payloadBytes: number, key: Buffer, salt: Buffer): Packet[] {
  const packets: Packet[] = [];
  const ssrc = 0x1234abcd;
  for (let i = 0; i < n; i++) {
    const header = Buffer.alloc(12);
    header[0] = 0x80;
    header[1] = 96 | (i % 4 === 3 ? 0x80 : 0);
    header.writeUInt16BE(i & 0xffff, 2);
    header.writeUInt32BE(Math.floor(i / 4) * 3000, 4);
    header.writeUInt32BE(ssrc, 8);
    const cipher = createCipheriv('aes-128-gcm', key, nonce(salt, ssrc, 0, i & 0xffff));
    cipher.setAAD(header);
    const body = cipher.update(randomBytes(payloadBytes));
    cipher.final();
    packets.push({ data: Buffer.concat([header, body, cipher.getAuthTag()]) });
  }
  return packets;
}

/** RFC 7714 §8.1: 0x0000 ‖ SSRC ‖ ROC ‖ SEQ, XORed with the 12-byte session salt. */
function nonce(salt: Buffer, ssrc: number, roc: number, seq: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(ssrc, 2);
  iv.writeUInt32BE(roc, 6);
  iv.writeUInt16BE(seq, 10);
  for (let i = 0; i < 12; i++) iv[i]! ^= salt[i]!;
  return iv;
}

/** One receive: header parse, nonce, decrypt and verify. Returns the payload length (kept so nothing is optimised away). */
export function receive(packet: Buffer, key: KeyObject | Buffer, salt: Buffer): number {
  const b0 = packet[0]!;
  if (b0 >> 6 !== 2) return 0;
  const csrcCount = b0 & 0x0f;
  const extension = (b0 & 0x10) !== 0;
  const marker = (packet[1]! & 0x80) !== 0;
  const payloadType = packet[1]! & 0x7f;
  const seq = packet.readUInt16BE(2);
  const timestamp = packet.readUInt32BE(4);
  const ssrc = packet.readUInt32BE(8);
  let offset = 12 + csrcCount * 4;
  if (extension) offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  const tagAt = packet.length - 16;
  const decipher = createDecipheriv('aes-128-gcm', key, nonce(salt, ssrc, 0, seq));
  decipher.setAAD(packet.subarray(0, offset));
  decipher.setAuthTag(packet.subarray(tagAt));
  const payload = decipher.update(packet.subarray(offset, tagAt));
  decipher.final();
  return payload.length + (marker ? 1 : 0) + payloadType + (timestamp & 1);
}

function pass(packets: Packet[], key: KeyObject | Buffer, salt: Buffer): number {
  const t0 = process.cpuUsage();
  let sink = 0;
  for (const p of packets) sink += receive(p.data, key, salt);
  const used = process.cpuUsage(t0);
  if (sink < 0) throw new Error('unreachable');
  return (used.user + used.system) / packets.length;
}

/**
 * The floor loop over its packets (KeyObject key), for interleaving with what it is compared to: the caller measures.
 * In chunks with a turn of the loop between them, as the replay harness feeds its packets, so both give V8's
 * foreground GC tasks the same chances.
 */
export function floorPasses(options: { packets?: number; payloadBytes?: number; chunk?: number } = {}): { packets: number; run(): Promise<void> } {
  const key = randomBytes(16);
  const salt = randomBytes(12);
  const packets = makePackets(options.packets ?? 3000, options.payloadBytes ?? 1100, key, salt);
  const keyObject = createSecretKey(key);
  const chunk = options.chunk ?? packets.length;
  pass(packets, keyObject, salt); // warm-up
  return {
    packets: packets.length,
    async run() {
      let sink = 0;
      for (let i = 0; i < packets.length; i += chunk) {
        for (let k = i; k < i + chunk && k < packets.length; k++) sink += receive(packets[k]!.data, keyObject, salt);
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (sink < 0) throw new Error('unreachable');
    },
  };
}

export function measureFloor(options: { packets?: number; passes?: number; payloadBytes?: number } = {}): FloorResult {
  const payloadBytes = options.payloadBytes ?? 1100;
  const key = randomBytes(16);
  const salt = randomBytes(12);
  const packets = makePackets(options.packets ?? 5000, payloadBytes, key, salt);
  const keyObject = createSecretKey(key);
  const withKeyObject: number[] = [];
  const withBuffer: number[] = [];
  pass(packets, keyObject, salt); // warm-up
  for (let i = 0; i < (options.passes ?? 5); i++) {
    withKeyObject.push(pass(packets, keyObject, salt));
    withBuffer.push(pass(packets, key, salt));
  }
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { usPerPacket: median(withKeyObject), usPerPacketBufferKey: median(withBuffer), payloadBytes };
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(JSON.stringify(measureFloor()));
