/**
 * Writes one Matroska (or WebM, its subset) file from encoded frames: header, then a cluster per keyframe (or per 5 s),
 * then on finish() the cues, the duration and the segment size, patched in place, and the `.part` suffix dropped.
 *
 * The segment size starts as "unknown", so a file cut short by a crash still plays up to its last whole cluster;
 * a file without the `.part` suffix is finalised (seekable, with its duration).
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

/** Clusters start at each video keyframe, and at least this often (audio-only files, long GOPs). */
const MAX_CLUSTER_MS = 5000;
const PART = '.part';

export class MatroskaWriter {
  readonly path: string;
  readonly #tracks: readonly TrackSpec[];
  readonly #videoTrack: number;
  readonly #file: Promise<FileHandle>;
  #chain: Promise<unknown>;
  #failure: Error | undefined;
  /** Bytes written (or queued) so far: the next element's offset. */
  #offset = 0;
  #segmentDataStart = 0;
  #durationOffset = 0;
  #cuesSeekOffset = 0;
  #cluster: { time: number; offset: number; blocks: Buffer[]; bytes: number } | undefined;
  readonly #cues: Buffer[] = [];
  readonly #lastTime: number[];
  #endMs = 0;
  #lastVideoMs = -1;
  #frameMs = 0;
  #videoFrames = 0;
  #audioFrames = 0;
  #finished: Promise<FileSummary | undefined> | undefined;

  /** Starts writing `path` + ".part" (created now, replaced if it exists). */
  constructor(path: string, docType: 'webm' | 'matroska', tracks: readonly TrackSpec[]) {
    this.path = path;
    this.#tracks = tracks;
    this.#videoTrack = tracks.findIndex((t) => t.kind === 'video');
    this.#lastTime = tracks.map(() => 0);
    this.#file = open(path + PART, 'w');
    this.#chain = this.#file;
    this.#chain.catch((err: Error) => (this.#failure ??= err));
    this.#append(this.#header(docType));
  }

  get durationMs(): number {
    return this.#endMs;
  }

  get bytes(): number {
    return this.#offset;
  }

  /**
   * Adds one frame of track `index` (0-based) at `timeMs` from the file's start; times never go backwards.
   * `frameMs`: how long the frame lasts, when the caller knows (audio); video uses the last frame interval.
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
      if (this.#lastVideoMs >= 0 && time > this.#lastVideoMs) this.#frameMs = time - this.#lastVideoMs;
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
    const cuesPosition = this.#offset - this.#segmentDataStart;
    if (this.#cues.length > 0) this.#append(element(ID.Cues, ...this.#cues));
    const segmentSize = this.#offset - this.#segmentDataStart;
    const duration = Buffer.alloc(8);
    duration.writeDoubleBE(this.#endMs);
    this.#patch(this.#durationOffset, duration);
    this.#patch(this.#cuesSeekOffset, uintBytes(this.#cues.length > 0 ? cuesPosition : 0, 8));
    this.#patch(this.#segmentDataStart - 8, vintOfLength(segmentSize, 8));
    const file = await this.#file.catch(() => undefined);
    await this.#chain.catch(() => {});
    await file?.close().catch(() => {});
    if (this.#failure !== undefined || frames === 0) {
      await rm(this.path + PART, { force: true });
      if (this.#failure) throw this.#failure;
      return undefined;
    }
    await rename(this.path + PART, this.path);
    return {
      path: this.path,
      bytes: this.#offset,
      durationMs: this.#endMs,
      videoFrames: this.#videoFrames,
      audioFrames: this.#audioFrames,
    };
  }

  #header(docType: 'webm' | 'matroska'): Buffer {
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
    this.#segmentDataStart = ebml.length + segmentHead.length;

    const info = element(
      ID.Info,
      uint(ID.TimestampScale, 1_000_000), // block times in milliseconds
      float64(ID.Duration, 0),
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
    // The last 8 bytes of the SeekHead are the Cues' SeekPosition value.
    this.#cuesSeekOffset = this.#segmentDataStart + seekHead.length - 8;
    // Duration: the float's 8 bytes end 2 + 8 bytes after the Info's TimestampScale (ID 0x4489, size 0x88).
    const durationInInfo = info.indexOf(Buffer.from([0x44, 0x89, 0x88])) + 3;
    this.#durationOffset = this.#segmentDataStart + seekHead.length + durationInInfo;
    return Buffer.concat([ebml, segmentHead, seekHead, info, tracks]);
  }

  #newCluster(time: number, keyframe: boolean): void {
    this.#flushCluster();
    this.#cluster = { time, offset: this.#offset, blocks: [], bytes: 0 };
    if (keyframe || this.#videoTrack < 0) {
      const track = this.#videoTrack < 0 ? 1 : this.#videoTrack + 1;
      const position = this.#offset - this.#segmentDataStart;
      this.#cues.push(
        element(
          ID.CuePoint,
          uint(ID.CueTime, time),
          element(ID.CueTrackPositions, uint(ID.CueTrack, track), uint(ID.CueClusterPosition, position)),
        ),
      );
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

  #patch(position: number, data: Buffer): void {
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
