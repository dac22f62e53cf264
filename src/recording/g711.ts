/**
 * G.711 (PCMU μ-law, PCMA A-law; ITU-T G.711) to 16-bit linear PCM, by table: cameras send it, Matroska has no
 * G.711 codec ID that players agree on, and 16-bit PCM (A_PCM/INT/LIT) plays everywhere. Decoding is exact (G.711
 * is a fixed mapping of each byte to one sample), so nothing is lost.
 */

function muLaw(code: number): number {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return u & 0x80 ? -magnitude : magnitude;
}

function aLaw(code: number): number {
  const a = (code & 0xff) ^ 0x55;
  const segment = (a >> 4) & 0x07;
  let magnitude = ((a & 0x0f) << 4) + 8;
  if (segment > 0) magnitude = (magnitude + 0x100) << (segment - 1);
  return a & 0x80 ? magnitude : -magnitude;
}

const TABLES = {
  PCMU: Int16Array.from({ length: 256 }, (_, i) => muLaw(i)),
  PCMA: Int16Array.from({ length: 256 }, (_, i) => aLaw(i)),
};

/** One G.711 byte per sample in, two bytes (little-endian) per sample out. */
export function g711ToPcm16le(law: 'PCMU' | 'PCMA', payload: Uint8Array): Buffer {
  const table = TABLES[law];
  const out = Buffer.alloc(payload.length * 2);
  for (let i = 0; i < payload.length; i++) out.writeInt16LE(table[payload[i] as number] as number, i * 2);
  return out;
}
