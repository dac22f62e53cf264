/**
 * H.264 for Matroska (V_MPEG4/ISO/AVC): RTP depacketizers give Annex-B access units (start codes); Matroska wants
 * 4-byte length prefixes and the SPS/PPS in an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1).
 */

export const NAL_IDR = 5;
export const NAL_SPS = 7;
export const NAL_PPS = 8;

/** The NAL units of an Annex-B buffer, without their start codes. */
export function splitAnnexB(data: Buffer): Buffer[] {
  const nals: Buffer[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < data.length) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) nals.push(trimTrailingZeros(data.subarray(start, i)));
      i += 3;
      start = i;
    } else {
      i++;
    }
  }
  if (start >= 0 && start < data.length) nals.push(data.subarray(start));
  return nals.filter((n) => n.length > 0);
}

/** A 4-byte start code leaves one zero byte before the 00 00 01 of the next NAL. */
function trimTrailingZeros(nal: Buffer): Buffer {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

export function nalType(nal: Buffer): number {
  return (nal[0] as number) & 0x1f;
}

/** NAL units with 4-byte big-endian length prefixes (lengthSizeMinusOne = 3 in the record below). */
export function toLengthPrefixed(nals: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const nal of nals) {
    const size = Buffer.alloc(4);
    size.writeUInt32BE(nal.length);
    parts.push(size, nal);
  }
  return Buffer.concat(parts);
}

export function avcDecoderConfiguration(sps: Buffer, pps: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from([1, sps[1] ?? 0, sps[2] ?? 0, sps[3] ?? 0, 0xff, 0xe1]), // version, profile, compat, level, 4-byte lengths, 1 SPS
    u16(sps.length),
    sps,
    Buffer.from([1]), // 1 PPS
    u16(pps.length),
    pps,
  ]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** Picture size from a sequence parameter set (ITU-T H.264 §7.3.2.1.1), cropping applied. */
export function spsPictureSize(sps: Buffer): { width: number; height: number } | undefined {
  try {
    const r = new BitReader(unescape(sps.subarray(1)));
    const profile = r.bits(8);
    r.bits(16); // constraint flags, level
    r.ue(); // seq_parameter_set_id
    let chromaFormat = 1;
    if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(profile)) {
      chromaFormat = r.ue();
      if (chromaFormat === 3) r.bits(1); // separate_colour_plane_flag
      r.ue(); // bit_depth_luma_minus8
      r.ue(); // bit_depth_chroma_minus8
      r.bits(1); // qpprime_y_zero_transform_bypass_flag
      if (r.bits(1)) {
        // seq_scaling_matrix_present_flag
        for (let i = 0; i < (chromaFormat === 3 ? 12 : 8); i++) {
          if (r.bits(1)) skipScalingList(r, i < 6 ? 16 : 64);
        }
      }
    }
    r.ue(); // log2_max_frame_num_minus4
    const pocType = r.ue();
    if (pocType === 0) r.ue();
    else if (pocType === 1) {
      r.bits(1);
      r.se();
      r.se();
      const cycle = r.ue();
      for (let i = 0; i < cycle; i++) r.se();
    }
    r.ue(); // max_num_ref_frames
    r.bits(1); // gaps_in_frame_num_value_allowed_flag
    const widthMbs = r.ue() + 1;
    const heightMapUnits = r.ue() + 1;
    const frameMbsOnly = r.bits(1);
    if (!frameMbsOnly) r.bits(1); // mb_adaptive_frame_field_flag
    r.bits(1); // direct_8x8_inference_flag
    let [left, right, top, bottom] = [0, 0, 0, 0];
    if (r.bits(1)) [left, right, top, bottom] = [r.ue(), r.ue(), r.ue(), r.ue()];
    const cropX = chromaFormat === 0 || chromaFormat === 3 ? 1 : 2;
    const cropY = (chromaFormat === 1 ? 2 : 1) * (2 - frameMbsOnly);
    return {
      width: widthMbs * 16 - cropX * (left + right),
      height: (2 - frameMbsOnly) * heightMapUnits * 16 - cropY * (top + bottom),
    };
  } catch {
    return undefined;
  }
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + r.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** Removes emulation prevention bytes (00 00 03 → 00 00). */
function unescape(data: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (i >= 2 && data[i] === 3 && data[i - 1] === 0 && data[i - 2] === 0) continue;
    out.push(data[i] as number);
  }
  return Buffer.from(out);
}

class BitReader {
  readonly #data: Buffer;
  #bit = 0;
  constructor(data: Buffer) {
    this.#data = data;
  }

  bits(n: number): number {
    let value = 0;
    for (let i = 0; i < n; i++) {
      const byte = this.#data[this.#bit >> 3];
      if (byte === undefined) throw new RangeError('SPS ends early');
      value = value * 2 + ((byte >> (7 - (this.#bit & 7))) & 1);
      this.#bit++;
    }
    return value;
  }

  ue(): number {
    let zeros = 0;
    while (this.bits(1) === 0) if (++zeros > 31) throw new RangeError('bad Exp-Golomb code');
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }
}
