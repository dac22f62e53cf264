// Parsers for the two clip formats the simulated camera ships with.
// Pure functions over bytes: no I/O, no werift, so they are easy to test.

/** One coded picture, ready to be handed to an RTP packetizer. */
export type EncodedFrame = {
  /** VP8: the raw frame. H264: the access unit in Annex-B form (start codes kept). */
  data: Uint8Array;
  /** Decodable on its own: VP8 key frame, or H264 access unit with an IDR slice. */
  keyframe: boolean;
  /** Position of the frame in the clip, from 0. */
  index: number;
};

export type Vp8Clip = { codec: 'VP8'; width: number; height: number; fps: number; frames: EncodedFrame[] };
export type H264Clip = { codec: 'H264'; fps: number; frames: EncodedFrame[] };

const IVF_FILE_HEADER_BYTES = 32;
const IVF_FRAME_HEADER_BYTES = 12;

/**
 * Reads a VP8 IVF file. Layout (all little-endian): 'DKIF', u16 version, u16 header size,
 * fourcc 'VP80', u16 width, u16 height, u32 time base denominator, u32 numerator,
 * u32 frame count, u32 unused; then per frame: u32 size, u64 pts, size bytes.
 * Frames are taken as evenly spaced at `fps` (pts are not used), as in the clips we ship.
 */
export function readIvf(buf: Uint8Array): Vp8Clip {
  if (buf.length < IVF_FILE_HEADER_BYTES) {
    throw new Error(`IVF: file is ${buf.length} bytes, shorter than the ${IVF_FILE_HEADER_BYTES}-byte header`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = ascii(buf, 0, 4);
  if (magic !== 'DKIF') throw new Error(`IVF: bad magic ${JSON.stringify(magic)}, expected "DKIF"`);
  const fourcc = ascii(buf, 8, 4);
  if (fourcc !== 'VP80') throw new Error(`IVF: codec ${JSON.stringify(fourcc)} is not supported, expected "VP80"`);

  const headerBytes = view.getUint16(6, true);
  if (headerBytes < IVF_FILE_HEADER_BYTES || headerBytes > buf.length) {
    throw new Error(`IVF: invalid header size ${headerBytes}`);
  }
  const width = view.getUint16(12, true);
  const height = view.getUint16(14, true);
  // The time base is numerator/denominator seconds per tick; ffmpeg writes 1/fps for IVF.
  const timeBaseDenominator = view.getUint32(16, true);
  const timeBaseNumerator = view.getUint32(20, true);
  if (timeBaseDenominator === 0 || timeBaseNumerator === 0) {
    throw new Error(`IVF: invalid time base ${timeBaseNumerator}/${timeBaseDenominator}`);
  }
  const fps = timeBaseDenominator / timeBaseNumerator;

  const frames: EncodedFrame[] = [];
  let offset = headerBytes;
  while (offset < buf.length) {
    const index = frames.length;
    if (offset + IVF_FRAME_HEADER_BYTES > buf.length) {
      throw new Error(`IVF: truncated header of frame ${index} at offset ${offset}`);
    }
    const size = view.getUint32(offset, true);
    const dataStart = offset + IVF_FRAME_HEADER_BYTES;
    if (size === 0) throw new Error(`IVF: frame ${index} at offset ${offset} is empty`);
    if (dataStart + size > buf.length) {
      throw new Error(`IVF: truncated frame ${index}: ${size} bytes announced, ${buf.length - dataStart} left`);
    }
    const data = buf.subarray(dataStart, dataStart + size);
    // RFC 6386 §9.1: bit 0 of the frame tag is the P (inverse key frame) flag; 0 = key frame.
    frames.push({ data, keyframe: (data[0]! & 0x01) === 0, index });
    offset = dataStart + size;
  }
  return { codec: 'VP8', width, height, fps, frames };
}

/** A NAL unit located in an Annex-B stream. */
type NalUnit = {
  /** nal_unit_type (ITU-T H.264 Table 7-1). */
  type: number;
  /** Offset of the start code (3 or 4 bytes). */
  start: number;
  /** Offset just past the NAL unit's last byte. */
  end: number;
  /** Offset of the NAL header byte. */
  header: number;
};

const NAL_SLICE = 1;
const NAL_IDR_SLICE = 5;
/** Types that, after a picture's slices, can only belong to the next access unit (H.264 §7.4.1.2.3). */
const NAL_TYPES_STARTING_AN_ACCESS_UNIT = new Set([
  6 /* SEI */, 7 /* SPS */, 8 /* PPS */, 9 /* AUD */, 14, 15, 16, 17, 18 /* prefix, subset SPS, reserved */,
]);

/**
 * Reads an H264 Annex-B elementary stream and groups its NAL units into access units
 * (one per picture). Annex-B carries no timing, hence the `fps` argument, returned as is.
 *
 * Access unit boundaries follow H.264 §7.4.1.2.3: after a picture's slices, a new access
 * unit starts at an SEI/SPS/PPS/AUD (or types 14-18) or at a slice with
 * first_mb_in_slice == 0. That last rule assumes slices come in order (no ASO),
 * which holds for x264 (our clips) and the usual real-time encoders.
 *
 * Frame data are slices of `buf`, start codes included, which is what werift's
 * H264Packetizer (inputFormat 'annexb') takes. Annex-B has no lengths, so a stream cut in
 * the middle of a NAL unit cannot be detected; only structural errors are.
 */
export function readAnnexB(buf: Uint8Array, fps: number): H264Clip {
  if (!(fps > 0 && Number.isFinite(fps))) throw new Error(`Annex-B: fps must be a positive number, got ${fps}`);
  const nalUnits = splitNalUnits(buf);

  const frames: EncodedFrame[] = [];
  let accessUnit: NalUnit[] = [];
  const flush = () => {
    const first = accessUnit[0];
    const last = accessUnit.at(-1);
    if (!first || !last) return;
    if (!accessUnit.some(isSlice)) {
      throw new Error(`Annex-B: access unit ${frames.length} at offset ${first.start} has no slice`);
    }
    frames.push({
      data: buf.subarray(first.start, last.end),
      keyframe: accessUnit.some((nal) => nal.type === NAL_IDR_SLICE),
      index: frames.length,
    });
    accessUnit = [];
  };

  for (const nal of nalUnits) {
    const pictureDone = accessUnit.some(isSlice);
    const startsNewPicture =
      NAL_TYPES_STARTING_AN_ACCESS_UNIT.has(nal.type) || (isSlice(nal) && firstMbInSliceIsZero(buf, nal));
    if (pictureDone && startsNewPicture) flush();
    accessUnit.push(nal);
  }
  flush();
  return { codec: 'H264', fps, frames };
}

function isSlice(nal: NalUnit): boolean {
  return nal.type === NAL_SLICE || nal.type === NAL_IDR_SLICE;
}

/**
 * first_mb_in_slice is the first field of the slice header, coded ue(v); ue(v) codes 0 as a
 * single '1' bit. So it is 0 exactly when the first bit after the NAL header is set.
 */
function firstMbInSliceIsZero(buf: Uint8Array, nal: NalUnit): boolean {
  const firstHeaderByte = buf[nal.header + 1];
  return firstHeaderByte !== undefined && (firstHeaderByte & 0x80) !== 0;
}

/** Finds every NAL unit, accepting 3-byte (00 00 01) and 4-byte (00 00 00 01) start codes. */
function splitNalUnits(buf: Uint8Array): NalUnit[] {
  const startCodes = findStartCodes(buf);
  const firstStartCode = startCodes[0];
  if (firstStartCode === undefined) throw new Error('Annex-B: no start code found (not an H264 elementary stream?)');
  // Only zero bytes (leading_zero_8bits) may precede the first start code.
  if (buf.subarray(0, firstStartCode.start).some((byte) => byte !== 0)) {
    throw new Error(`Annex-B: garbage before the first start code at offset ${firstStartCode.start}`);
  }

  return startCodes.map(({ start, header }, i) => {
    // Zero bytes before the next start code are trailing_zero_8bits, not NAL data.
    const end = trimTrailingZeros(buf, header, startCodes[i + 1]?.start ?? buf.length);
    if (header >= end) throw new Error(`Annex-B: empty NAL unit at offset ${start}`);
    const headerByte = buf[header]!;
    if (headerByte & 0x80) throw new Error(`Annex-B: forbidden_zero_bit set in NAL unit at offset ${start}`);
    return { type: headerByte & 0x1f, start, end, header };
  });
}

/** Start codes: offset of the first start code byte (00 00 01 or 00 00 00 01) and of the NAL header. */
function findStartCodes(buf: Uint8Array): { start: number; header: number }[] {
  const found: { start: number; header: number }[] = [];
  for (let i = 0; i + 2 < buf.length; i++) {
    if (buf[i] === 0 && buf[i + 1] === 0 && buf[i + 2] === 1) {
      const previousHeader = found.at(-1)?.header ?? -1;
      const isFourByte = i - 1 > previousHeader && buf[i - 1] === 0;
      found.push({ start: isFourByte ? i - 1 : i, header: i + 3 });
      i += 2;
    }
  }
  return found;
}

function trimTrailingZeros(buf: Uint8Array, from: number, end: number): number {
  while (end > from && buf[end - 1] === 0) end--;
  return end;
}

function ascii(buf: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...buf.subarray(offset, offset + length));
}
