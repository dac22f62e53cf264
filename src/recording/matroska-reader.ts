/**
 * Reads back what MatroskaWriter wrote, no more: the header (where the fields finish() patches are, the tracks, the
 * duration and start time) and the clusters' first and last blocks. For the recordings list and for recovery.
 */
import type { FileHandle } from 'node:fs/promises';
import { children, ID, idBytes, readHead, readSize, readUint, type ElementHead } from './ebml.ts';
import type { HeaderLayout } from './matroska-writer.ts';

export interface FileHeader {
  /** Undefined when a field the writer patches is missing (not a file of ours). */
  layout: HeaderLayout | undefined;
  /** Kind of each track, by track number. */
  tracks: Map<number, 'video' | 'audio'>;
  /** Where the first cluster starts. */
  bodyStart: number;
  /** The Segment's data size; undefined while unknown (a file being written, or left by a crash). */
  segmentSize: number | undefined;
  durationMs: number;
  startedAt: Date | undefined;
}

/** The writer's header is a few hundred bytes (H264's parameter sets included). */
export const HEADER_READ_BYTES = 16 * 1024;
const MATROSKA_EPOCH_MS = Date.UTC(2001, 0, 1);

export function parseHeader(data: Buffer): FileHeader | undefined {
  const ebml = readHead(data, 0);
  if (ebml?.id !== ID.EBML || ebml.size === undefined) return undefined;
  const segment = readHead(data, ebml.dataStart + ebml.size);
  if (segment?.id !== ID.Segment) return undefined;
  const header: FileHeader = { layout: undefined, tracks: new Map(), bodyStart: 0, segmentSize: segment.size, durationMs: 0, startedAt: undefined };
  let durationOffset: number | undefined;
  let cuesSeekOffset: number | undefined;
  let at = segment.dataStart;
  for (;;) {
    const head = readHead(data, at);
    if (head === undefined || head.size === undefined || head.id === ID.Cluster || head.dataStart + head.size > data.length) break;
    if (head.id === ID.SeekHead) cuesSeekOffset = cuesSeekPosition(data, head as ElementHead & { size: number }) ?? cuesSeekOffset;
    if (head.id === ID.Info) {
      for (const field of children(data, head.dataStart, head.dataStart + head.size)) {
        if (field.id === ID.Duration && field.size === 8) {
          durationOffset = field.dataStart;
          header.durationMs = data.readDoubleBE(field.dataStart);
        } else if (field.id === ID.DateUTC && field.size === 8) {
          header.startedAt = new Date(MATROSKA_EPOCH_MS + Number(data.readBigInt64BE(field.dataStart) / 1_000_000n));
        }
      }
    }
    if (head.id === ID.Tracks) {
      for (const entry of children(data, head.dataStart, head.dataStart + head.size)) {
        if (entry.id !== ID.TrackEntry) continue;
        let number = 0;
        let type = 0;
        for (const field of children(data, entry.dataStart, entry.dataStart + entry.size)) {
          if (field.id === ID.TrackNumber) number = readUint(data, field);
          if (field.id === ID.TrackType) type = readUint(data, field);
        }
        if (number > 0 && (type === 1 || type === 2)) header.tracks.set(number, type === 1 ? 'video' : 'audio');
      }
    }
    at = head.dataStart + head.size;
  }
  header.bodyStart = at;
  // The writer's Segment size field is 8 bytes long, so that finish() can write any size into it.
  if (durationOffset !== undefined && cuesSeekOffset !== undefined && segment.dataStart - segment.start === 12) {
    header.layout = { segmentDataStart: segment.dataStart, durationOffset, cuesSeekOffset };
  }
  return header;
}

function cuesSeekPosition(data: Buffer, seekHead: ElementHead & { size: number }): number | undefined {
  const cuesId = idBytes(ID.Cues);
  for (const seek of children(data, seekHead.dataStart, seekHead.dataStart + seekHead.size)) {
    let isCues = false;
    let position: number | undefined;
    for (const field of children(data, seek.dataStart, seek.dataStart + seek.size)) {
      if (field.id === ID.SeekID) isCues = data.subarray(field.dataStart, field.dataStart + field.size).equals(cuesId);
      if (field.id === ID.SeekPosition && field.size === 8) position = field.dataStart;
    }
    if (isCues && position !== undefined) return position;
  }
  return undefined;
}

/** One SimpleBlock: its track, time (ms from the file's start) and keyframe flag (RFC 9559 §10.1). */
export interface BlockInfo {
  track: number;
  timeMs: number;
  keyframe: boolean;
}

/** A whole cluster in the file: where it starts and ends, its time, and its first block. */
export interface ClusterInfo {
  offset: number;
  end: number;
  timeMs: number;
  first: BlockInfo | undefined;
}

/** The cluster at `offset`, if one starts there and ends within `fileSize`. */
export async function readCluster(file: FileHandle, offset: number, fileSize: number): Promise<ClusterInfo | undefined> {
  const { buffer } = await file.read({ buffer: Buffer.alloc(Math.min(64, fileSize - offset)), position: offset });
  const head = readHead(buffer, 0);
  if (head?.id !== ID.Cluster || head.size === undefined || offset + head.dataStart + head.size > fileSize) return undefined;
  // The Timestamp comes first (the writer puts it there), then the blocks; the first block's head is enough.
  let timeMs = 0;
  let first: BlockInfo | undefined;
  for (let at = head.dataStart; at < buffer.length; ) {
    const field = readHead(buffer, at);
    if (field === undefined || field.size === undefined) break;
    if (field.id === ID.Timestamp && field.dataStart + field.size <= buffer.length) {
      timeMs = readUint(buffer, field as ElementHead & { size: number });
    } else if (field.id === ID.SimpleBlock) {
      first = blockInfo(buffer, field.dataStart, timeMs);
      break;
    }
    at = field.dataStart + field.size;
  }
  return { offset, end: offset + head.dataStart + head.size, timeMs, first };
}

/** Every block of a cluster (read whole). */
export async function readBlocks(file: FileHandle, cluster: ClusterInfo): Promise<BlockInfo[]> {
  const { buffer } = await file.read({ buffer: Buffer.alloc(cluster.end - cluster.offset), position: cluster.offset });
  const head = readHead(buffer, 0)!;
  const blocks: BlockInfo[] = [];
  for (const field of children(buffer, head.dataStart, buffer.length)) {
    if (field.id === ID.SimpleBlock) {
      const block = blockInfo(buffer, field.dataStart, cluster.timeMs);
      if (block) blocks.push(block);
    }
  }
  return blocks;
}

function blockInfo(data: Buffer, at: number, clusterMs: number): BlockInfo | undefined {
  const track = readSize(data, at);
  if (track?.value === undefined || at + track.length + 3 > data.length) return undefined;
  const relative = data.readInt16BE(at + track.length);
  const flags = data[at + track.length + 2] as number;
  return { track: track.value, timeMs: clusterMs + relative, keyframe: (flags & 0x80) !== 0 };
}
