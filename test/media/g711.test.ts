import { describe, expect, it } from 'vitest';
import {
  aLawToLinear,
  encodeG711,
  linearToALaw,
  linearToMuLaw,
  muLawToLinear,
} from '../../devices/camera/media/g711.ts';

const ALL_INT16 = Array.from({ length: 65536 }, (_, i) => i - 32768);
const ALL_CODES = Array.from({ length: 256 }, (_, i) => i);

describe('G.711 μ-law (PCMU)', () => {
  it('encodes known values', () => {
    expect(linearToMuLaw(0)).toBe(0xff);
    expect(linearToMuLaw(-1)).toBe(0x7f); // one's complement of 0: "negative zero"
    expect(linearToMuLaw(1000)).toBe(0xce);
    expect(linearToMuLaw(-1000)).toBe(0x4e);
    expect(linearToMuLaw(32767)).toBe(0x80);
    expect(linearToMuLaw(-32768)).toBe(0x00);
    expect(linearToMuLaw(100_000)).toBe(0x80); // clipped
  });

  it('decodes known values: code 0x80 is the largest, 32124', () => {
    expect(muLawToLinear(0xff)).toBe(0);
    expect(muLawToLinear(0x7f)).toBe(0);
    expect(muLawToLinear(0xce)).toBe(988);
    expect(muLawToLinear(0x80)).toBe(32124);
    expect(muLawToLinear(0x00)).toBe(-32124);
  });

  it('re-encodes every decoded code to itself (except -0, which becomes +0)', () => {
    for (const code of ALL_CODES) expect(linearToMuLaw(muLawToLinear(code))).toBe(code === 0x7f ? 0xff : code);
  });

  it('is symmetric: x and -x - 1 differ only by the sign bit (ITU-T G.191)', () => {
    for (const x of ALL_INT16) expect(linearToMuLaw(-x - 1)).toBe(linearToMuLaw(x) ^ 0x80);
  });

  it('keeps the quantisation error within half a step (step = 8 << exponent)', () => {
    for (const x of ALL_INT16.filter((x) => Math.abs(x) <= 32124)) {
      const code = linearToMuLaw(x);
      const halfStep = 1 << (((~code >> 4) & 0x07) + 2);
      expect(Math.abs(muLawToLinear(code) - x), `x = ${x}`).toBeLessThanOrEqual(halfStep);
    }
  });
});

describe('G.711 A-law (PCMA)', () => {
  it('encodes known values', () => {
    expect(linearToALaw(0)).toBe(0xd5);
    expect(linearToALaw(-1)).toBe(0x55);
    expect(linearToALaw(1000)).toBe(0xfa);
    expect(linearToALaw(-1000)).toBe(0x7a);
    expect(linearToALaw(32767)).toBe(0xaa);
    expect(linearToALaw(-32768)).toBe(0x2a);
  });

  it('decodes known values: code 0xaa is the largest, 32256', () => {
    expect(aLawToLinear(0xd5)).toBe(8);
    expect(aLawToLinear(0x55)).toBe(-8);
    expect(aLawToLinear(0xfa)).toBe(1008);
    expect(aLawToLinear(0xaa)).toBe(32256);
    expect(aLawToLinear(0x2a)).toBe(-32256);
  });

  it('re-encodes every decoded code to itself', () => {
    for (const code of ALL_CODES) expect(linearToALaw(aLawToLinear(code))).toBe(code);
  });

  it('is symmetric: x and -x - 1 differ only by the sign bit', () => {
    for (const x of ALL_INT16) expect(linearToALaw(-x - 1)).toBe(linearToALaw(x) ^ 0x80);
  });

  it('keeps the quantisation error within half a step (step = 16 << max(segment - 1, 0))', () => {
    for (const x of ALL_INT16) {
      const code = linearToALaw(x);
      const segment = ((code ^ 0x55) >> 4) & 0x07;
      const halfStep = 8 << Math.max(segment - 1, 0);
      expect(Math.abs(aLawToLinear(code) - x), `x = ${x}`).toBeLessThanOrEqual(halfStep);
    }
  });
});

describe('encodeG711', () => {
  it('encodes a buffer of samples with the chosen law, clamping out-of-range values', () => {
    const samples = Int16Array.of(0, -1, 1000, 32767);
    expect([...encodeG711('PCMU', samples)]).toEqual([0xff, 0x7f, 0xce, 0x80]);
    expect([...encodeG711('PCMA', samples)]).toEqual([0xd5, 0x55, 0xfa, 0xaa]);
    expect([...encodeG711('PCMU', [40_000, -40_000])]).toEqual([0x80, 0x00]);
  });
});
