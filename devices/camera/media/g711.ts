// ITU-T G.711 companding of 16-bit linear PCM, bit-exact with the ITU-T G.191 reference
// software (STL g711.c).
// Encoded bytes are what goes on the wire: RFC 3551 §4.5.14, PCMU = μ-law, PCMA = A-law.

/** μ-law bias (in 14-bit units): shifts magnitudes so segment boundaries fall on powers of two. */
const MU_LAW_BIAS = 33;
/** Largest biased 14-bit magnitude; louder samples clip to the top code. */
const MU_LAW_MAX = 0x1fff;

/** Encodes one signed 16-bit sample to μ-law (PCMU). linearToMuLaw(0) === 0xff. */
export function linearToMuLaw(sample: number): number {
  const pcm = clampInt16(sample);
  const sign = pcm < 0 ? 0x80 : 0x00;
  // μ-law is defined on 14 bits. Like the ITU-T G.191 reference, negative samples use their
  // one's complement (~x = -x - 1) so that x and -x - 1 differ only by the sign bit.
  const magnitude = Math.min(((pcm < 0 ? ~pcm : pcm) >> 2) + MU_LAW_BIAS, MU_LAW_MAX);
  // Segment (exponent) = position of the highest set bit above the 5 low bits.
  const exponent = 31 - Math.clz32(magnitude >> 5);
  const mantissa = (magnitude >> (exponent + 1)) & 0x0f;
  // μ-law bytes are sent inverted (more 1 bits on the line for quiet signals).
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

/** Decodes one μ-law byte to a signed 16-bit sample. */
export function muLawToLinear(code: number): number {
  const inverted = ~code & 0xff;
  const exponent = (inverted >> 4) & 0x07;
  // Middle of the quantisation step, back in 16-bit units (bias 33 * 4 = 0x84).
  const magnitude = ((((inverted & 0x0f) << 3) + 0x84) << exponent) - 0x84;
  return inverted & 0x80 ? 0 - magnitude : magnitude; // 0 - x rather than -x: code 0x7f gives 0, not -0
}

/** Encodes one signed 16-bit sample to A-law (PCMA). linearToALaw(0) === 0xd5. */
export function linearToALaw(sample: number): number {
  // A-law works on 13-bit magnitudes; negative values map to one's complement (-1 -> 0).
  const pcm13 = clampInt16(sample) >> 3;
  const positive = pcm13 >= 0;
  const magnitude = positive ? pcm13 : -pcm13 - 1;
  // Segment 0 covers 0..31 like segment 1 (linear part); segment s >= 1 covers [16 << s, 32 << s).
  const segment = magnitude < 0x20 ? 0 : 31 - Math.clz32(magnitude) - 4;
  const mantissa = (segment < 2 ? magnitude >> 1 : magnitude >> segment) & 0x0f;
  // Even bits are inverted on the line (the 0x55 mask); the sign bit is 1 for positive values.
  return ((segment << 4) | mantissa) ^ (positive ? 0xd5 : 0x55);
}

/** Decodes one A-law byte to a signed 16-bit sample. */
export function aLawToLinear(code: number): number {
  const value = (code & 0xff) ^ 0x55;
  const segment = (value >> 4) & 0x07;
  let magnitude = ((value & 0x0f) << 4) + 8; // + 8: middle of the quantisation step
  if (segment > 0) magnitude = (magnitude + 0x100) << (segment - 1);
  return value & 0x80 ? magnitude : -magnitude;
}

export type G711Law = 'PCMU' | 'PCMA';

/** Encodes 16-bit samples to one G.711 byte per sample. */
export function encodeG711(law: G711Law, samples: ArrayLike<number>): Uint8Array {
  const encode = law === 'PCMU' ? linearToMuLaw : linearToALaw;
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = encode(samples[i]!);
  return out;
}

function clampInt16(sample: number): number {
  return Math.max(-32768, Math.min(32767, Math.round(sample)));
}
