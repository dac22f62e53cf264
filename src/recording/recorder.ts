/**
 * Which camera sessions are recorded, and where: devices listed in the `record` option (or all, "*") always; others
 * on demand (start/stop through the admin API), from their live session or their next one. Files go to
 * `{dataDir}/recordings/{deviceId}/`, and retention runs after every finished file and every 10 minutes.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Answerer } from '../answerer/answerer.ts';
import type { Session } from '../answerer/session.ts';
import type { BridgeMetrics } from '../metrics/bridge-metrics.ts';
import { enforceRetention, listRecordings, type RecordingFile, type RetentionLimits } from './retention.ts';
import { SessionRecorder } from './session-recorder.ts';

export interface RecorderOptions {
  /** Where recordings go: one sub-directory per device. */
  dir: string;
  /** Devices recorded whenever they stream: "*" for all. */
  always: '*' | readonly string[];
  segmentMs: number;
  retention: RetentionLimits;
  log: Logger;
  metrics?: BridgeMetrics | undefined;
  /** Asks a camera without a live session to offer, so an on-demand recording can begin. */
  askToStart?: ((deviceId: string) => void) | undefined;
}

export interface RecordingStatus {
  deviceId: string;
  /** always: by the `record` option; on-demand: started through the admin API. */
  mode: 'always' | 'on-demand';
  /** A file is open now (false while waiting for the device's session or its first keyframe). */
  recording: boolean;
  file?: string;
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

export class Recorder {
  readonly dir: string;
  readonly #options: RecorderOptions;
  readonly #log: Logger;
  readonly #onDemand = new Set<string>();
  readonly #active = new Map<string, SessionRecorder>();
  readonly #pending = new Set<Promise<unknown>>();
  /** Sessions whose recorder is being set up (the device directory is being created). */
  readonly #preparing = new Set<Session>();
  #answerer: Answerer | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<unknown> = Promise.resolve();
  #closed: Promise<void> | undefined;

  constructor(options: RecorderOptions) {
    this.dir = options.dir;
    this.#options = options;
    this.#log = options.log;
  }

  /** Records the answerer's sessions from now on, and starts the periodic retention sweep. */
  attach(answerer: Answerer): void {
    this.#answerer = answerer;
    answerer.on('session', (session) => {
      if (this.wants(session.deviceId)) this.#record(session);
    });
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
    if (active) {
      const stopped = active.stop();
      this.#keep(stopped);
      await stopped;
    }
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

  files(deviceId?: string): Promise<RecordingFile[]> {
    return listRecordings(this.dir, deviceId);
  }

  /** Finalises every open file (shutdown: called after the answerer closed its sessions). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#timer);
      this.#timer = undefined;
      for (const recorder of this.#active.values()) this.#keep(recorder.stop());
      this.#active.clear();
      // Until nothing is pending: a recorder still being set up when close() began is stopped once it exists.
      while (this.#pending.size > 0) await Promise.all([...this.#pending]);
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

  #record(session: Session): void {
    const deviceId = session.deviceId;
    if (this.#active.get(deviceId)?.session === session || this.#preparing.has(session)) return;
    this.#preparing.add(session);
    const starting = (async () => {
      const dir = join(this.dir, deviceId);
      await SessionRecorder.prepare(dir).finally(() => this.#preparing.delete(session));
      if (this.#closed || session.state === 'closed' || !this.wants(deviceId)) return;
      const metrics = this.#options.metrics;
      const recorder = new SessionRecorder(session, {
        dir,
        segmentMs: this.#options.segmentMs,
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
      session.once('closed', () => {
        if (this.#active.get(deviceId) === recorder) this.#active.delete(deviceId);
        this.#keep(recorder.stop()); // the recorder finalises its file; close() waits for that
      });
    })().catch((err: Error) => this.#log.error({ deviceId, err: err.message }, 'recording could not start'));
    this.#keep(starting);
  }

  /** Work that close() must wait for: recorders being set up, files being finalised. */
  #keep(work: Promise<unknown>): void {
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  #sweep(): void {
    this.#sweeping = this.#sweeping
      .then(() => enforceRetention(this.dir, this.#options.retention))
      .then((deleted) => {
        for (const file of deleted) this.#log.info({ path: file.path, bytes: file.bytes }, 'recording deleted by retention');
      })
      .catch((err: Error) => this.#log.warn({ err: err.message }, 'retention sweep failed'));
  }
}
