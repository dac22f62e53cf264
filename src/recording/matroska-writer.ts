/**
 * Writes one Matroska (or WebM, its subset) file from encoded frames: header, then a cluster per keyframe (or per 5 s),
 * then on finish() the cues, the duration and the segment size, patched in place, and the `.part` suffix dropped.
 *
 * The segment size starts as "unknown", so a file cut short by a crash still plays up to its last whole cluster, and
 * ./recovery.ts can finish it on the next start with the same finalisingWrites(); a file without the `.part` suffix
 * is finalised (seekable, with its duration). Files are created 0600, like everything in the data directory.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { element, float64, ID, idBytes, string, uint, uintBytes, UNKNOWN_SIZE_8, vintOfLength } from './ebml.ts';

export interface TrackSpec {
  kind: 'video' | 'audio';
  /** Matroska codec ID: V_VP8, V_MPEG4/ISO/AVC, A_OPUS, A_PCM/INT/LIT. */
  codecId: string;
  codecPrivate?: Buffer | undefined;
  width?: number | undefined;
  height?: number | undefined;
  sampleRate?: number | undefined;
  channels?: number | undefined;
  bitDepth?: number | undefined;
  /** Nanoseconds a decoder must decode before a seek point (Opus: 80 ms, RFC 7845 §4.6). */
  seekPreRollNs?: number | undefined;
}

export interface FileSummary {
  path: string;
  bytes: number;
  durationMs: number;
  videoFrames: number;
  audioFrames: number;
}

/** Where a file's fields that finish() patches are: known to the writer, found by parsing for recovery. */
export interface HeaderLayout {
  /** Offset of the Segment's data; its 8-byte size field is just before. */
  segmentDataStart: number;
  /** Offset of the Info's 8-byte Duration float. */
  durationOffset: number;
  /** Offset of the 8-byte SeekPosition of the SeekHead's entry for the Cues. */
  cuesSeekOffset: number;
}

/** A seek point: a cluster that starts with a keyframe (or any cluster of an audio-only file). */
export interface Cue {
  timeMs: number;
  track: number;
  /** The cluster's offset in the file. */
  clusterOffset: number;
}

/** Clusters start at each video keyframe, and at least this often (audio-only files, long GOPs). */
const MAX_CLUSTER_MS = 5000;
export const PART = '.part';
/** Matroska's DateUTC counts nanoseconds from 2001-01-01T00:00:00 UTC (RFC 9559 §5.1.2.3). */
const MATROSKA_EPOCH_MS = Date.UTC(2001, 0, 1);

/**
 * The writes that finalise a file whose last cluster ends at `end`: the Cues appended there, then the Duration, the
 * Cues' position in the SeekHead and the Segment's size patched in place (in that order: the size last, so that an
 * interrupted finish still reads as an unknown-size segment).
 */
export function finalisingWrites(layout: HeaderLayout, end: number, cues: readonly Cue[], endMs: number): { position: number; data: Buffer }[] {
  const writes: { position: number; data: Buffer }[] = [];
  const points = cues.map((c) =>
    element(
      ID.CuePoint,
      uint(ID.CueTime, c.timeMs),
      element(ID.CueTrackPositions, uint(ID.CueTrack, c.track), uint(ID.CueClusterPosition, c.clusterOffset - layout.segmentDataStart)),
    ),
  );
  const cuesElement = points.length > 0 ? element(ID.Cues, ...points) : Buffer.alloc(0);
  if (cuesElement.length > 0) writes.push({ position: end, data: cuesElement });
  const duration = Buffer.alloc(8);
  duration.writeDoubleBE(endMs);
  writes.push({ position: layout.durationOffset, data: duration });
  writes.push({ position: layout.cuesSeekOffset, data: uintBytes(points.length > 0 ? end - layout.segmentDataStart : 0, 8) });
  writes.push({ position: layout.segmentDataStart - 8, data: vintOfLength(end + cuesElement.length - layout.segmentDataStart, 8) });
  return writes;
}

export interface WriterOptions {
  /** The file being written until finish() renames it to `path` (default `path` + ".part"). */
  partPath?: string;
  /** Wall-clock time of the first frame, stored as the file's DateUTC (default now). */
  startedAt?: Date;
}

export class MatroskaWriter {
  readonly path: string;
  readonly partPath: string;
  readonly #tracks: readonly TrackSpec[];
  readonly #videoTrack: number;
  readonly #file: Promise<FileHandle>;
  #chain: Promise<unknown>;
  #failure: Error | undefined;
  /** Bytes written (or queued) so far: the next element's offset. */
  #offset = 0;
  #layout: HeaderLayout = { segmentDataStart: 0, durationOffset: 0, cuesSeekOffset: 0 };
  #cluster: { time: number; offset: number; blocks: Buffer[]; bytes: number } | undefined;
  readonly #cues: Cue[] = [];
  readonly #lastTime: number[];
  #endMs = 0;
  #lastVideoMs = -1;
  #frameMs = 0;
  #videoFrames = 0;
  #audioFrames = 0;
  #finished: Promise<FileSummary | undefined> | undefined;

  /** Starts writing the part file (created now with mode 0600, replaced if it exists). */
  constructor(path: string, docType: 'webm' | 'matroska', tracks: readonly TrackSpec[], options: WriterOptions = {}) {
    this.path = path;
    this.partPath = options.partPath ?? path + PART;
    this.#tracks = tracks;
    this.#videoTrack = tracks.findIndex((t) => t.kind === 'video');
    this.#lastTime = tracks.map(() => 0);
    this.#file = open(this.partPath, 'w', 0o600);
    this.#chain = this.#file;
    this.#chain.catch((err: Error) => (this.#failure ??= err));
    this.#append(this.#header(docType, options.startedAt ?? new Date()));
  }

  get durationMs(): number {
    return this.#endMs;
  }

  /** Bytes so far, the cluster being gathered included. */
  get bytes(): number {
    return this.#offset + (this.#cluster?.bytes ?? 0);
  }

  /**
   * Adds one frame of track `index` (0-based) at `timeMs` from the file's start; times never go backwards.
   * `frameMs`: how long the frame lasts, when the caller knows (audio; video: the interval before it, which the
   * caller knows across files); otherwise video uses the last frame interval in this file.
   */
  write(index: number, timeMs: number, keyframe: boolean, data: Buffer, frameMs = 0): void {
    if (this.#finished) return;
    const track = this.#tracks[index];
    if (track === undefined) throw new RangeError(`no track ${index}`);
    const time = Math.max(Math.round(timeMs), this.#lastTime[index] as number, 0);
    this.#lastTime[index] = time;
    const isVideo = track.kind === 'video';
    const cluster = this.#cluster;
    const startsCluster =
      cluster === undefined ||
      (isVideo && keyframe && cluster.blocks.length > 0) ||
      time - cluster.time >= MAX_CLUSTER_MS;
    if (startsCluster) this.#newCluster(time, isVideo && keyframe);
    const current = this.#cluster!;
    // SimpleBlock (RFC 9559 §10.1): track number, signed 16-bit time relative to the cluster, flags, frame.
    const relative = Math.max(-32768, Math.min(32767, time - current.time));
    const head = Buffer.alloc(4);
    head[0] = 0x80 | (index + 1);
    head.writeInt16BE(relative, 1);
    head[3] = keyframe || !isVideo ? 0x80 : 0x00;
    const block = element(ID.SimpleBlock, head, data);
    current.blocks.push(block);
    current.bytes += block.length;
    if (isVideo) {
      this.#videoFrames++;
      if (frameMs > 0) this.#frameMs = frameMs;
      else if (this.#lastVideoMs >= 0 && time > this.#lastVideoMs) this.#frameMs = time - this.#lastVideoMs;
      this.#lastVideoMs = time;
      this.#endMs = Math.max(this.#endMs, time + this.#frameMs);
    } else {
      this.#audioFrames++;
      this.#endMs = Math.max(this.#endMs, time + frameMs);
    }
  }

  /**
   * Writes the last cluster, the cues, the duration and the segment size, closes the file and drops ".part".
   * A file without a single frame is deleted (undefined). Idempotent.
   */
  finish(): Promise<FileSummary | undefined> {
    this.#finished ??= this.#finish();
    return this.#finished;
  }

  async #finish(): Promise<FileSummary | undefined> {
    const frames = this.#videoFrames + this.#audioFrames;
    this.#flushCluster();
    for (const { position, data } of finalisingWrites(this.#layout, this.#offset, this.#cues, this.#endMs)) {
      this.#write(data, position);
      this.#offset = Math.max(this.#offset, position + data.length);
    }
    const file = await this.#file.catch(() => undefined);
    await this.#chain.catch(() => {});
    await file?.close().catch(() => {});
    if (this.#failure !== undefined || frames === 0) {
      await rm(this.partPath, { force: true });
      if (this.#failure) throw this.#failure;
      return undefined;
    }
    await rename(this.partPath, this.path);
    return {
      path: this.path,
      bytes: this.#offset,
      durationMs: this.#endMs,
      videoFrames: this.#videoFrames,
      audioFrames: this.#audioFrames,
    };
  }

  #header(docType: 'webm' | 'matroska', startedAt: Date): Buffer {
    const ebml = element(
      ID.EBML,
      uint(ID.EBMLVersion, 1),
      uint(ID.EBMLReadVersion, 1),
      uint(ID.EBMLMaxIDLength, 4),
      uint(ID.EBMLMaxSizeLength, 8),
      string(ID.DocType, docType),
      uint(ID.DocTypeVersion, 4),
      uint(ID.DocTypeReadVersion, 2),
    );
    const segmentHead = Buffer.concat([idBytes(ID.Segment), UNKNOWN_SIZE_8]);
    const segmentDataStart = ebml.length + segmentHead.length;
    const date = Buffer.alloc(8);
    date.writeBigInt64BE(BigInt(startedAt.getTime() - MATROSKA_EPOCH_MS) * 1_000_000n);
    const info = element(
      ID.Info,
      uint(ID.TimestampScale, 1_000_000), // block times in milliseconds
      float64(ID.Duration, 0),
      element(ID.DateUTC, date), // when the first frame arrived: players show it, the recordings API lists it
      string(ID.MuxingApp, 'tali'),
      string(ID.WritingApp, 'tali'),
    );
    const tracks = element(ID.Tracks, ...this.#tracks.map((t, i) => trackEntry(t, i + 1)));
    // The SeekHead points at Info, Tracks and the Cues; the Cues' position is patched in when the file is finished.
    const seek = (id: number, position: number) =>
      element(ID.Seek, element(ID.SeekID, idBytes(id)), element(ID.SeekPosition, uintBytes(position, 8)));
    const seekHeadSize = (entries: number) => element(ID.SeekHead, ...Array.from({ length: entries }, () => seek(ID.Info, 0))).length;
    const infoPosition = seekHeadSize(3);
    const seekHead = element(ID.SeekHead, seek(ID.Info, infoPosition), seek(ID.Tracks, infoPosition + info.length), seek(ID.Cues, 0));
    // The last 8 bytes of the SeekHead are the Cues' SeekPosition value; the Duration float follows its ID and size.
    const durationInInfo = info.indexOf(Buffer.from([0x44, 0x89, 0x88])) + 3;
    this.#layout = {
      segmentDataStart,
      cuesSeekOffset: segmentDataStart + seekHead.length - 8,
      durationOffset: segmentDataStart + seekHead.length + durationInInfo,
    };
    return Buffer.concat([ebml, segmentHead, seekHead, info, tracks]);
  }

  #newCluster(time: number, keyframe: boolean): void {
    this.#flushCluster();
    this.#cluster = { time, offset: this.#offset, blocks: [], bytes: 0 };
    if (keyframe || this.#videoTrack < 0) {
      this.#cues.push({ timeMs: time, track: this.#videoTrack < 0 ? 1 : this.#videoTrack + 1, clusterOffset: this.#offset });
    }
  }

  #flushCluster(): void {
    const cluster = this.#cluster;
    this.#cluster = undefined;
    if (cluster === undefined || cluster.blocks.length === 0) return;
    this.#append(element(ID.Cluster, uint(ID.Timestamp, cluster.time), ...cluster.blocks));
  }

  #append(data: Buffer): void {
    const position = this.#offset;
    this.#offset += data.length;
    this.#write(data, position);
  }

  #write(data: Buffer, position: number): void {
    this.#chain = this.#chain
      .then(async () => {
        if (this.#failure) return;
        const file = await this.#file;
        await file.write(data, 0, data.length, position);
      })
      .catch((err: Error) => {
        this.#failure ??= err;
      });
  }
}

function trackEntry(t: TrackSpec, number: number): Buffer {
  const fields = [
    uint(ID.TrackNumber, number),
    uint(ID.TrackUID, number),
    uint(ID.TrackType, t.kind === 'video' ? 1 : 2),
    uint(ID.FlagLacing, 0),
    string(ID.CodecID, t.codecId),
  ];
  if (t.codecPrivate) fields.push(element(ID.CodecPrivate, t.codecPrivate));
  if (t.seekPreRollNs) fields.push(uint(ID.CodecDelay, 0), uint(ID.SeekPreRoll, t.seekPreRollNs));
  if (t.kind === 'video') {
    fields.push(element(ID.Video, uint(ID.PixelWidth, t.width ?? 0), uint(ID.PixelHeight, t.height ?? 0)));
  } else {
    const audio = [float64(ID.SamplingFrequency, t.sampleRate ?? 8000), uint(ID.Channels, t.channels ?? 1)];
    if (t.bitDepth) audio.push(uint(ID.BitDepth, t.bitDepth));
    fields.push(element(ID.Audio, ...audio));
  }
  return element(ID.TrackEntry, ...fields);
}
