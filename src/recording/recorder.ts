/**
 * Which camera sessions are recorded, and where: devices listed in the `record` option (or all, "*") always; others
 * on demand (start/stop through the admin API), from their live session or their next one. Files go to
 * `{dataDir}/recordings/{deviceId}/` (./store.ts), and retention runs after every finished file and every 10 minutes.
 *
 * On attach, the part files this bridge left when it last stopped without finishing them (a crash) are recovered
 * (./recovery.ts) before the first retention sweep; listing files waits for that.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Answerer } from '../answerer/answerer.ts';
import type { CameraSession } from '../answerer/session.ts';
import type { MediaPlane } from '../media/plane.ts';
import type { BridgeMetrics } from '../metrics/bridge-metrics.ts';
import { isValidId } from '../protocol/topics.ts';
import { HEADER_READ_BYTES, parseHeader } from './matroska-reader.ts';
import { recoverPart } from './recovery.ts';
import { enforceRetention, type RetentionLimits } from './retention.ts';
import { SessionRecorder, type SessionRecording } from './session-recorder.ts';
import { listRecordings, listStored, makePrivate, RECORDING_EXTENSIONS, startOfName, type StoredFile } from './store.ts';

export interface RecorderOptions {
  /** Where recordings go: one sub-directory per device. */
  dir: string;
  /** This bridge's ID: it names the part files it writes, and it recovers only its own after a crash. */
  owner: string;
  /** Devices recorded whenever they stream: "*" for all. */
  always: '*' | readonly string[];
  segmentMs: number;
  retention: RetentionLimits;
  log: Logger;
  metrics?: BridgeMetrics | undefined;
  /** Asks a camera without a live session to offer, so an on-demand recording can begin. */
  askToStart?: ((deviceId: string) => void) | undefined;
  /** Where a session's recording runs: beside the session (src/media/). */
  media: Pick<MediaPlane, 'record'>;
}

export interface RecordingStatus {
  deviceId: string;
  /** always: by the `record` option; on-demand: started through the admin API. */
  mode: 'always' | 'on-demand';
  /** A file is open now (false while waiting for the device's session or its first keyframe). */
  recording: boolean;
  file?: string;
}

/** A finished recording, as the recordings API lists it. */
export interface RecordingEntry {
  deviceId: string;
  name: string;
  bytes: number;
  /** Wall-clock time of the first frame (ISO 8601). */
  startedAt: string;
  durationMs: number;
  /** When the file was finalised (ISO 8601). */
  modified: string;
  path: string;
}

export class RecordingError extends Error {
  readonly code: 'TALI_ERR_RECORDING_CONFIGURED' | 'TALI_ERR_RECORDING_CLOSED';
  constructor(code: RecordingError['code'], message: string) {
    super(message);
    this.name = 'RecordingError';
    this.code = code;
  }
}

const RETENTION_EVERY_MS = 10 * 60_000;
/** Files close at a tenth of the retention limit (so retention keeps about ten of them), within these bounds. */
const MIN_SEGMENT_BYTES = 256 * 1024;
const MAX_SEGMENT_BYTES = 1_000_000_000;

/** The size at which a file closes, whatever its frame type: what keeps one file from filling the retention limit. */
export function segmentBytesFor(maxBytes: number): number {
  return maxBytes > 0 ? Math.min(MAX_SEGMENT_BYTES, Math.max(MIN_SEGMENT_BYTES, Math.floor(maxBytes / 10))) : MAX_SEGMENT_BYTES;
}

export class Recorder {
  readonly dir: string;
  readonly #options: RecorderOptions;
  readonly #log: Logger;
  readonly #onDemand = new Set<string>();
  readonly #active = new Map<string, SessionRecording>();
  /** Every recorder whose files are not all finished yet (#active, and those finishing their last file). */
  readonly #writing = new Set<SessionRecording>();
  readonly #pending = new Set<Promise<unknown>>();
  #answerer: Answerer | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Recovery of crash-left files, then each retention sweep in turn. */
  #recovered: Promise<void> = Promise.resolve();
  #sweeping: Promise<unknown> = Promise.resolve();
  /** What each finished file's header says, by path (with the size and time it had). */
  readonly #info = new Map<string, { bytes: number; modified: number; startedAt: Date | undefined; durationMs: number }>();
  #closed: Promise<void> | undefined;

  constructor(options: RecorderOptions) {
    this.dir = options.dir;
    this.#options = options;
    this.#log = options.log;
  }

  /**
   * Records the answerer's sessions from now on, recovers what a crash left, and starts the periodic retention sweep.
   * The recovery runs in the background: the bridge is ready without waiting for it.
   */
  attach(answerer: Answerer): void {
    this.#answerer = answerer;
    answerer.on('session', (session) => {
      if (this.wants(session.deviceId)) this.#record(session);
    });
    this.#recovered = this.#recover().catch((err: Error) => this.#log.error({ err: err.message }, 'recovering recordings failed'));
    this.#sweeping = this.#recovered;
    if (this.#limited) {
      this.#timer = setInterval(() => this.#sweep(), RETENTION_EVERY_MS);
      this.#timer.unref();
      this.#sweep();
    }
  }

  wants(deviceId: string): boolean {
    return this.#always(deviceId) || this.#onDemand.has(deviceId);
  }

  /** Starts recording a device: its live session now, else its next one. */
  start(deviceId: string): RecordingStatus {
    if (this.#closed) throw new RecordingError('TALI_ERR_RECORDING_CLOSED', 'the bridge is shutting down');
    if (!this.#always(deviceId)) this.#onDemand.add(deviceId);
    const session = this.#answerer?.sessions.get(deviceId);
    if (session !== undefined && session.state !== 'closed') this.#record(session);
    else this.#options.askToStart?.(deviceId);
    return this.status(deviceId);
  }

  /** Stops an on-demand recording and finalises its file. Devices in the `record` option cannot be stopped. */
  async stop(deviceId: string): Promise<RecordingStatus> {
    if (this.#always(deviceId)) {
      throw new RecordingError('TALI_ERR_RECORDING_CONFIGURED', `${deviceId} is recorded by the record option; change it there`);
    }
    this.#onDemand.delete(deviceId);
    const active = this.#active.get(deviceId);
    this.#active.delete(deviceId);
    if (active) await this.#stopRecorder(active);
    return this.status(deviceId);
  }

  status(deviceId: string): RecordingStatus {
    const active = this.#active.get(deviceId);
    const file = active?.currentFile;
    return {
      deviceId,
      mode: this.#always(deviceId) ? 'always' : 'on-demand',
      recording: file !== undefined,
      ...(file !== undefined && { file }),
    };
  }

  /** Every device recorded now or wanted (on demand, or listed by ID in the `record` option). */
  statuses(): RecordingStatus[] {
    const always = this.#options.always === '*' ? [] : this.#options.always;
    const ids = new Set([...always, ...this.#onDemand, ...this.#active.keys()]);
    return [...ids].sort().map((id) => this.status(id));
  }

  /** Finished recordings (crash-left ones once recovered), oldest first, with their start time and duration. */
  async files(deviceId?: string): Promise<RecordingEntry[]> {
    await this.#recovered;
    const files = await listRecordings(this.dir, deviceId);
    const entries: RecordingEntry[] = [];
    for (const file of files) {
      const info = await this.#headerOf(file);
      const startedAt = info.startedAt ?? startOfName(file.name) ?? new Date(file.modified.getTime() - info.durationMs);
      entries.push({
        deviceId: file.deviceId,
        name: file.name,
        bytes: file.bytes,
        startedAt: startedAt.toISOString(),
        durationMs: Math.round(info.durationMs),
        modified: file.modified.toISOString(),
        path: file.path,
      });
    }
    return entries;
  }

  /** A finished recording of `deviceId` by its name, or undefined (never a path outside the device's directory). */
  async file(deviceId: string, name: string): Promise<RecordingEntry | undefined> {
    if (!isValidId(deviceId) || name.includes('/') || name.startsWith('.') || !RECORDING_EXTENSIONS.some((ext) => name.endsWith(ext))) {
      return undefined;
    }
    return (await this.files(deviceId)).find((f) => f.name === name);
  }

  /** Finalises every open file (shutdown: called after the answerer closed its sessions). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      this.#timer = undefined;
      for (const recorder of this.#active.values()) void this.#stopRecorder(recorder);
      this.#active.clear();
      // Until nothing is pending: every file being finalised.
      while (this.#pending.size > 0) await Promise.all([...this.#pending]);
      await this.#recovered;
      await this.#sweeping;
    })();
    return this.#closed;
  }

  #always(deviceId: string): boolean {
    const always = this.#options.always;
    return always === '*' || always.includes(deviceId);
  }

  get #limited(): boolean {
    const { maxAgeMs, maxBytes } = this.#options.retention;
    return maxAgeMs > 0 || maxBytes > 0;
  }

  /**
   * Attaches a recorder to the session at once, in the same turn as the session's 'session' event: with media workers
   * the recording's create message then follows the session's own on the same port, so the worker's recorder listens
   * before the first packet. A camera that sends one keyframe and ignores keyframe requests is recorded only if its
   * recorder sees that keyframe; when the directory was created asynchronously first, the worker's session could
   * connect and pass it meanwhile, and nothing was ever recorded (recording-limits test, worker mode under load).
   */
  #record(session: CameraSession): void {
    const deviceId = session.deviceId;
    if (this.#closed || session.state === 'closed' || this.#active.get(deviceId)?.session === session) return;
    const dir = join(this.dir, deviceId);
    try {
      SessionRecorder.prepare(dir);
    } catch (err) {
      this.#log.error({ deviceId, err: (err as Error).message }, 'recording could not start');
      return;
    }
    const metrics = this.#options.metrics;
    const recorder = this.#options.media.record(session, {
      dir,
      segmentMs: this.#options.segmentMs,
      segmentBytes: segmentBytesFor(this.#options.retention.maxBytes),
      partSuffix: `.${this.#options.owner}.part`,
      log: session.log.child({ component: 'recorder' }),
      requestKeyframe: () => {
        session.requestKeyframe();
        metrics?.keyframeRequested('recording');
      },
      fileStarted: () => metrics?.recordingStarted(),
      fileFinished: ({ summary, error, bytes }) => {
        metrics?.recordingFinished(bytes, error === undefined && summary !== undefined);
        if (summary && this.#limited) this.#sweep();
      },
    });
    this.#active.set(deviceId, recorder);
    this.#writing.add(recorder);
    session.once('closed', () => {
      if (this.#active.get(deviceId) === recorder) this.#active.delete(deviceId);
      void this.#stopRecorder(recorder); // the recorder finalises its file; close() waits for that
    });
  }

  /** Stops a recorder (idempotent); its files count as being written until they are finished. */
  #stopRecorder(recorder: SessionRecording): Promise<void> {
    const stopped = recorder.stop().finally(() => this.#writing.delete(recorder));
    this.#keep(stopped);
    return stopped;
  }

  /** Work that close() must wait for: files being finalised. */
  #keep(work: Promise<unknown>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  /** The part files this bridge left unfinished: finalised and renamed (./recovery.ts). */
  async #recover(): Promise<void> {
    await makePrivate(this.dir);
    const parts = (await listStored(this.dir)).filter((f) => f.part?.owner === this.#options.owner || f.part?.owner === '');
    for (const part of parts) {
      if (this.#closed) return;
      if (this.#isOpen(part.path)) continue; // a session recording already (the list was taken before it began)
      const finalPath = join(this.dir, part.deviceId, part.part!.finalName);
      try {
        const result = await recoverPart(part.path, finalPath);
        if (result.outcome === 'recovered') {
          this.#log.warn({ event: 'recording_recovered', ...result, partBytes: part.bytes }, 'recording left by a crash recovered');
        } else if (result.outcome === 'empty') {
          this.#log.info({ path: part.path }, 'recording left by a crash held no frame: deleted');
        } else {
          this.#log.warn({ path: part.path, reason: result.reason }, 'recording left by a crash not recovered');
        }
      } catch (err) {
        this.#log.warn({ path: part.path, err: (err as Error).message }, 'recording left by a crash not recovered');
      }
    }
  }

  /** Part files that must stay: the ones this bridge writes now, and every other bridge's (it may be writing them). */
  readonly #mustStay = (file: StoredFile): boolean => {
    if (file.part === undefined) return false;
    if (file.part.owner !== this.#options.owner && file.part.owner !== '') return true;
    return this.#isOpen(file.path);
  };

  /** Whether one of this bridge's recorders writes (or finishes) this part file. */
  #isOpen(path: string): boolean {
    return [...this.#writing].some((r) => r.partFiles.includes(path));
  }

  async #headerOf(file: StoredFile): Promise<{ startedAt: Date | undefined; durationMs: number }> {
    const cached = this.#info.get(file.path);
    if (cached && cached.bytes === file.bytes && cached.modified === file.modified.getTime()) return cached;
    const handle = await open(file.path, 'r').catch(() => undefined);
    const header = handle && (await handle.read({ buffer: Buffer.alloc(HEADER_READ_BYTES), position: 0 }).then(({ buffer, bytesRead }) => parseHeader(buffer.subarray(0, bytesRead))).finally(() => handle.close()));
    const info = { bytes: file.bytes, modified: file.modified.getTime(), startedAt: header?.startedAt, durationMs: header?.durationMs ?? 0 };
    if (this.#info.size > 10_000) this.#info.clear();
    this.#info.set(file.path, info);
    return info;
  }

  #sweep(): void {
    this.#sweeping = this.#sweeping
      .then(() => enforceRetention(this.dir, this.#options.retention, this.#mustStay))
      .then((deleted) => {
        for (const file of deleted) this.#log.info({ path: file.path, bytes: file.bytes }, 'recording deleted by retention');
      })
      .catch((err: Error) => this.#log.warn({ err: err.message }, 'retention sweep failed'));
  }
}
