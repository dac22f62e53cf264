/**
 * EBML (RFC 8794) element encoding, just what the Matroska writer needs: IDs are written as their bytes, sizes as
 * variable-length integers, and a few fixed-width forms that the writer patches in place when a file is finalised.
 */

/** Matroska element IDs (RFC 9559), with their marker bits, as written. */
export const ID = {
  EBML: 0x1a45dfa3,
  EBMLVersion: 0x4286,
  EBMLReadVersion: 0x42f7,
  EBMLMaxIDLength: 0x42f2,
  EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Seek: 0x4dbb,
  SeekID: 0x53ab,
  SeekPosition: 0x53ac,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  Duration: 0x4489,
  DateUTC: 0x4461,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackUID: 0x73c5,
  TrackType: 0x83,
  FlagLacing: 0x9c,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  CodecDelay: 0x56aa,
  SeekPreRoll: 0x56bb,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  Audio: 0xe1,
  SamplingFrequency: 0xb5,
  Channels: 0x9f,
  BitDepth: 0x6264,
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
  Cues: 0x1c53bb6b,
  CuePoint: 0xbb,
  CueTime: 0xb3,
  CueTrackPositions: 0xb7,
  CueTrack: 0xf7,
  CueClusterPosition: 0xf1,
} as const;

/** A size field of all ones: "unknown size" (RFC 8794 §6.2), so a file cut short by a crash still parses. */
export const UNKNOWN_SIZE_8 = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function idBytes(id: number): Buffer {
  const bytes = id > 0xffffff ? 4 : id > 0xffff ? 3 : id > 0xff ? 2 : 1;
  const out = Buffer.alloc(bytes);
  out.writeUIntBE(id, 0, bytes);
  return out;
}

/** The shortest variable-length size of `n` (never the all-ones pattern, which means unknown). */
export function vint(n: number): Buffer {
  for (let length = 1; length <= 8; length++) {
    if (n < 2 ** (7 * length) - 1) return vintOfLength(n, length);
  }
  throw new RangeError(`EBML size ${n} is too large`);
}

/** `n` as a variable-length integer of exactly `length` bytes (for sizes patched later). */
export function vintOfLength(n: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let rest = n;
  for (let i = length - 1; i >= 0; i--) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  out[0] = (out[0] as number) | (0x80 >> (length - 1));
  return out;
}

export function element(id: number, ...body: Buffer[]): Buffer {
  const data = Buffer.concat(body);
  return Buffer.concat([idBytes(id), vint(data.length), data]);
}

export function uint(id: number, value: number): Buffer {
  let bytes = 1;
  while (bytes < 8 && value >= 2 ** (8 * bytes)) bytes++;
  return element(id, uintBytes(value, bytes));
}

/** An unsigned integer in exactly `bytes` bytes, so that it can be rewritten in place. */
export function uintBytes(value: number, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let rest = value;
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return out;
}

export function float64(id: number, value: number): Buffer {
  const data = Buffer.alloc(8);
  data.writeDoubleBE(value);
  return element(id, data);
}

export function string(id: number, value: string): Buffer {
  return element(id, Buffer.from(value, 'utf8'));
}

/** Element IDs are read with their marker bits, as they are written (RFC 8794 §5). */
export function readId(data: Buffer, at: number): { id: number; length: number } | undefined {
  const first = data[at];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23; // leading zeros of the byte, plus one
  if (length > 4 || at + length > data.length) return undefined;
  return { id: data.readUIntBE(at, length), length };
}

/** A variable-length size (RFC 8794 §4); `value` is undefined for "unknown size" (all value bits set). */
export function readSize(data: Buffer, at: number): { value: number | undefined; length: number } | undefined {
  const first = data[at];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23;
  if (at + length > data.length) return undefined;
  let value = first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const byte = data[at + i] as number;
    value = value * 256 + byte;
    allOnes &&= byte === 0xff;
  }
  return { value: allOnes ? undefined : value, length };
}

/** One element's header: its ID, where its data starts and how long it is (undefined: unknown size). */
export interface ElementHead {
  id: number;
  start: number;
  dataStart: number;
  size: number | undefined;
}

export function readHead(data: Buffer, at: number): ElementHead | undefined {
  const id = readId(data, at);
  if (id === undefined) return undefined;
  const size = readSize(data, at + id.length);
  if (size === undefined) return undefined;
  return { id: id.id, start: at, dataStart: at + id.length + size.length, size: size.value };
}

/** The children of an element whose data is all in `data[start, end)`; stops at the first one that does not fit. */
export function* children(data: Buffer, start: number, end: number): Generator<ElementHead & { size: number }> {
  for (let at = start; at < end; ) {
    const head = readHead(data, at);
    if (head === undefined || head.size === undefined || head.dataStart + head.size > end) return;
    yield head as ElementHead & { size: number };
    at = head.dataStart + head.size;
  }
}

export function readUint(data: Buffer, head: { dataStart: number; size: number }): number {
  let value = 0;
  for (let i = 0; i < head.size; i++) value = value * 256 + (data[head.dataStart + i] as number);
  return value;
}
