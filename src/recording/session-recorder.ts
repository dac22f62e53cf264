/**
 * Records one camera session into files of about `segmentMs` and at most `segmentBytes` each.
 *
 *   rtp ─► per track: RtpClock ─► video: VideoAssembler ─► (H264: Annex-B → length-prefixed) ─┐
 *                               └► audio: Opus as is, G.711 → 16-bit PCM ──────────────────────┴► MatroskaWriter
 *
 * Container: WebM when every track is WebM-legal (VP8, Opus), Matroska otherwise (H264, or G.711 audio stored as PCM);
 * both are the same format to ffmpeg, VLC and mpv, and WebM plays in browsers too.
 *
 * The first file starts at the first keyframe (one is requested when recording starts): nothing before it decodes.
 * The next file starts at the first keyframe after `segmentMs`, or after 3/4 of `segmentBytes` (one is requested
 * then, so files do not wait for the camera's next GOP). A camera that ignores the request (one keyframe, then only
 * delta frames; or a GOP longer than a segment) does not hold the file open: after one more segment (KEYFRAME_WAIT_MS
 * at most: long enough for a camera's fixed GOP, or a slow answer, to end the file on its keyframe), or once the file
 * reaches `segmentBytes`, the next file starts on whatever frame comes. Such a file plays from its first keyframe
 * (its first cue; ffmpeg, VLC and browsers skip the frames before it), and its leading frames decode when it is
 * played after the previous file, which holds the pictures they refer to. The track headers (picture size, H264
 * parameter sets) come from the last keyframe, so every file is complete on its own.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { RtpPacket } from 'werift';
import type { CameraSession, Session } from '../answerer/session.ts';
import type { RemoteTrack } from '../webrtc/peer.ts';
import { RtpClock, VideoAssembler } from './frames.ts';
import { g711ToPcm16le } from './g711.ts';
import { avcDecoderConfiguration, NAL_PPS, NAL_SPS, nalType, splitAnnexB, spsPictureSize, toLengthPrefixed } from './h264.ts';
import { MatroskaWriter, type FileSummary, type TrackSpec } from './matroska-writer.ts';
import { recordingName } from './store.ts';

export interface SessionRecorderOptions {
  /** Directory for this device's files (created if missing). */
  dir: string;
  segmentMs: number;
  /** A file closes at this size on whatever frame comes next. */
  segmentBytes: number;
  /** Appended to a file's name while it is written, e.g. ".bridge-a.part": whose it is, for recovery after a crash. */
  partSuffix: string;
  log: Logger;
  /** Sends PLI to the camera (counted by the caller). */
  requestKeyframe: () => void;
  fileStarted: (path: string) => void;
  fileFinished: (result: { summary?: FileSummary; error?: Error; bytes: number }) => void;
}

/** A recording of one camera session, as the Recorder drives it: the SessionRecorder, or its handle on the main thread. */
export interface SessionRecording {
  readonly session: CameraSession;
  /** The file being written, if any. */
  readonly currentFile: string | undefined;
  /** Its part files on disk: the one being written and those being finalised. */
  readonly partFiles: string[];
  /** Finalises the current file and stops recording. Idempotent. */
  stop(): Promise<void>;
}

interface Input {
  track: RemoteTrack;
  clock: RtpClock;
  assembler: VideoAssembler | undefined;
  /** VP8: the picture size of the last keyframe, for files that start between keyframes. */
  size?: { width: number; height: number } | undefined;
  /** Video: the last frame's time and the interval before it (a file's first frame lasts that long too). */
  lastFrameMs?: number;
  frameMs?: number;
}

interface OpenFile {
  writer: MatroskaWriter;
  startMs: number;
  /** Track index in the file, by SSRC. */
  index: Map<number, number>;
}

/** Shortest time between two keyframe requests for the same reason (packet loss; a file to end). */
const PLI_INTERVAL_MS = 1000;
/** How long a file waits for the keyframe it asked for before the next one starts without it (at most a segment). */
const KEYFRAME_WAIT_MS = 10_000;
/** A keyframe is asked for when the file reaches this share of segmentBytes, so that it closes on one. */
const EARLY_SPLIT = 0.75;
const OPUS_FRAME_MS = 20;
/** The Opus track's CodecPrivate: an identification header (RFC 7845 §5.1) for WebRTC's 48 kHz stereo. */
export const OPUS_HEAD = Buffer.from([
  ...Buffer.from('OpusHead'), 1, 2, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 0, // RFC 7845 §5.1: v1, 2 channels, no pre-skip, 48 kHz
]);

export class SessionRecorder {
  readonly session: Session;
  readonly #options: SessionRecorderOptions;
  readonly #inputs = new Map<number, Input>();
  readonly #finishing = new Set<Promise<void>>();
  /** Part files not yet renamed: the open one, and those being finalised. */
  readonly #parts = new Set<string>();
  #file: OpenFile | undefined;
  /** When the open file asked for a keyframe to end on (bridge clock, ms). */
  #splitAskedAt: number | undefined;
  #sps: Buffer | undefined;
  #pps: Buffer | undefined;
  readonly #lastPli = { loss: -Infinity, split: -Infinity };
  #stopped: Promise<void> | undefined;
  readonly #onTrack = (track: RemoteTrack) => this.#input(track);
  readonly #onRtp = (track: RemoteTrack, packet: RtpPacket) => this.#onPacket(track, packet);
  readonly #onClosed = () => void this.stop();

  constructor(session: Session, options: SessionRecorderOptions) {
    this.session = session;
    this.#options = options;
    // Tracks the session already announced (recording started mid-session), then the ones still to come.
    for (const t of session.stats.tracks) this.#input({ kind: t.kind, codec: t.codec, ssrc: t.ssrc });
    session.on('track', this.#onTrack);
    session.on('rtp', this.#onRtp);
    session.once('closed', this.#onClosed);
    this.#options.requestKeyframe();
  }

  /** The file being written, if any. */
  get currentFile(): string | undefined {
    return this.#file?.writer.path;
  }

  /** Its part files on disk: the one being written and those being finalised. */
  get partFiles(): string[] {
    return [...this.#parts];
  }

  /** Finalises the current file and stops listening to the session. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      this.session.off('track', this.#onTrack);
      this.session.off('rtp', this.#onRtp);
      this.session.off('closed', this.#onClosed);
      this.#close();
      await Promise.all([...this.#finishing]);
    })();
    return this.#stopped;
  }

  #input(track: RemoteTrack): Input {
    let input = this.#inputs.get(track.ssrc);
    if (input === undefined) {
      const video = track.codec === 'VP8' || track.codec === 'H264';
      input = {
        track,
        clock: new RtpClock(video ? 90_000 : track.codec === 'opus' ? 48_000 : 8_000),
        assembler: video ? new VideoAssembler(track.codec as 'VP8' | 'H264') : undefined,
      };
      this.#inputs.set(track.ssrc, input);
    }
    return input;
  }

  #onPacket(track: RemoteTrack, packet: RtpPacket): void {
    if (this.#stopped) return;
    const input = this.#input(track);
    const timeMs = input.clock.toMs(packet.header.timestamp, performance.now());
    if (input.assembler === undefined) {
      this.#onAudio(input, packet, timeMs);
      return;
    }
    const { frame, lost } = input.assembler.push(packet);
    if (lost) this.#askKeyframe('loss');
    if (frame === undefined) return;
    let data = frame.data;
    if (input.track.codec === 'H264') {
      const nals = splitAnnexB(frame.data);
      for (const nal of nals) {
        if (nalType(nal) === NAL_SPS) this.#sps = nal;
        else if (nalType(nal) === NAL_PPS) this.#pps = nal;
      }
      data = toLengthPrefixed(nals);
    }
    if (frame.keyframe && input.track.codec === 'VP8') input.size = vp8Size(frame.data) ?? input.size;
    if (frame.keyframe && (this.#file === undefined || this.#splitAskedAt !== undefined)) this.#rotate(timeMs);
    else if (this.#overdue(timeMs)) this.#rotate(timeMs);
    if (input.lastFrameMs !== undefined && timeMs > input.lastFrameMs) input.frameMs = timeMs - input.lastFrameMs;
    input.lastFrameMs = timeMs;
    this.#write(input, timeMs, frame.keyframe, data, input.frameMs ?? 0);
  }

  #onAudio(input: Input, packet: RtpPacket, timeMs: number): void {
    const audioOnly = ![...this.#inputs.values()].some((i) => i.assembler !== undefined);
    if (audioOnly && (this.#file === undefined || this.#splitAskedAt !== undefined)) this.#rotate(timeMs);
    else if (this.#overdue(timeMs)) this.#rotate(timeMs);
    const codec = input.track.codec;
    if (codec === 'PCMU' || codec === 'PCMA') {
      this.#write(input, timeMs, true, g711ToPcm16le(codec, packet.payload), (packet.payload.length * 1000) / 8000);
    } else {
      this.#write(input, timeMs, true, packet.payload, OPUS_FRAME_MS);
    }
  }

  #write(input: Input, timeMs: number, keyframe: boolean, data: Buffer, frameMs: number): void {
    const file = this.#file;
    const index = file?.index.get(input.track.ssrc);
    if (file === undefined || index === undefined) return; // before the first keyframe, or a track that came late
    const at = timeMs - file.startMs;
    file.writer.write(index, at, keyframe, data, frameMs);
    const { segmentMs, segmentBytes } = this.#options;
    if (this.#splitAskedAt === undefined && (at >= segmentMs || file.writer.bytes >= segmentBytes * EARLY_SPLIT)) {
      this.#splitAskedAt = timeMs;
      this.#askKeyframe('split');
    }
  }

  /** Whether the open file must close before the next frame, keyframe or not: it is full, or its keyframe is late. */
  #overdue(timeMs: number): boolean {
    const file = this.#file;
    if (file === undefined) return false; // the first file waits for a keyframe: nothing before one decodes
    if (file.writer.bytes >= this.#options.segmentBytes) return true;
    const wait = Math.min(KEYFRAME_WAIT_MS, this.#options.segmentMs);
    return this.#splitAskedAt !== undefined && timeMs - this.#splitAskedAt >= wait;
  }

  /** Closes the current file (if any) and opens the next one at `timeMs`. */
  #rotate(timeMs: number): void {
    const tracks: TrackSpec[] = [];
    const index = new Map<number, number>();
    for (const input of this.#inputs.values()) {
      const spec = this.#spec(input);
      if (spec === undefined) return; // H264 before its first SPS and PPS: wait for the next keyframe
      index.set(input.track.ssrc, tracks.length);
      tracks.push(spec);
    }
    if (tracks.length === 0) return;
    this.#close();
    const webm = tracks.every((t) => t.codecId === 'V_VP8' || t.codecId === 'A_OPUS');
    const startedAt = new Date();
    const path = join(this.#options.dir, recordingName(this.session.deviceId, startedAt, webm ? '.webm' : '.mkv'));
    const writer = new MatroskaWriter(path, webm ? 'webm' : 'matroska', tracks, { partPath: path + this.#options.partSuffix, startedAt });
    this.#file = { writer, startMs: timeMs, index };
    this.#parts.add(writer.partPath);
    this.#splitAskedAt = undefined;
    this.#options.fileStarted(path);
    this.#options.log.info({ path, tracks: tracks.map((t) => t.codecId) }, 'recording file started');
  }

  #spec(input: Input): TrackSpec | undefined {
    switch (input.track.codec) {
      case 'VP8':
        return { kind: 'video', codecId: 'V_VP8', width: input.size?.width, height: input.size?.height };
      case 'H264': {
        if (this.#sps === undefined || this.#pps === undefined) return undefined;
        const size = spsPictureSize(this.#sps);
        return {
          kind: 'video',
          codecId: 'V_MPEG4/ISO/AVC',
          codecPrivate: avcDecoderConfiguration(this.#sps, this.#pps),
          width: size?.width,
          height: size?.height,
        };
      }
      case 'opus':
        return { kind: 'audio', codecId: 'A_OPUS', codecPrivate: OPUS_HEAD, sampleRate: 48_000, channels: 2, seekPreRollNs: 80_000_000 };
      case 'PCMU':
      case 'PCMA':
        return { kind: 'audio', codecId: 'A_PCM/INT/LIT', sampleRate: 8000, channels: 1, bitDepth: 16 };
    }
  }

  #close(): void {
    const file = this.#file;
    this.#file = undefined;
    if (file === undefined) return;
    const done = file.writer.finish().then(
      (summary) => {
        if (summary) this.#options.log.info(summary, 'recording file finalised');
        this.#options.fileFinished({ ...(summary && { summary }), bytes: file.writer.bytes });
      },
      (error: Error) => {
        this.#options.log.error({ path: file.writer.path, err: error.message }, 'recording file failed');
        this.#options.fileFinished({ error, bytes: file.writer.bytes });
      },
    );
    this.#finishing.add(done);
    void done.finally(() => {
      this.#finishing.delete(done);
      this.#parts.delete(file.writer.partPath);
    });
  }

  #askKeyframe(reason: 'loss' | 'split'): void {
    const now = performance.now();
    if (now - this.#lastPli[reason] < PLI_INTERVAL_MS) return;
    this.#lastPli[reason] = now;
    this.#options.requestKeyframe();
  }

  /** Creates the device's directory, private to the bridge's user like the rest of the data directory. */
  static prepare(dir: string): void {
    mkdirSync(dir, { recursive: true, mode: 0o700 }); // synchronous: see Recorder#record (one directory per session)
  }
}

/** RFC 6386 §9.1: a key frame's 3-byte tag, the start code 9d 01 2a, then 14-bit width and height. */
function vp8Size(frame: Buffer): { width: number; height: number } | undefined {
  if (frame.length < 10 || frame[3] !== 0x9d || frame[4] !== 0x01 || frame[5] !== 0x2a) return undefined;
  return { width: frame.readUInt16LE(6) & 0x3fff, height: frame.readUInt16LE(8) & 0x3fff };
}
