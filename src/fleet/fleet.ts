/**
 * The bridge's cameras at a glance, for the dashboard's grid: per device its live session's rates and its latest
 * keyframe as a JPEG still. Stills are decoded on demand (when someone looks) and cached per keyframe, so a camera
 * nobody looks at costs no decoding; one that is looked at gets a keyframe request when its still is older than
 * `refreshMs` (at most one per `refreshMs`, and the relay and recorder requests are separate), so the grid
 * refreshes every few seconds even from cameras with long keyframe intervals.
 *
 *   Answerer ─'session'─► Fleet ─► CameraMonitor per live session (rates, keyframe capture)
 *                           └────► latest Keyframe per device ─► JpegDecoder (ffmpeg) ─► cached JPEG
 */
import type { Answerer } from '../answerer/answerer.ts';
import type { CameraSession } from '../answerer/session.ts';
import type { MediaPlane } from '../media/plane.ts';
import type { CameraRates, CameraWatch, Keyframe } from './camera-monitor.ts';
import type { JpegDecoder } from './jpeg-decoder.ts';

export interface FleetOptions {
  /** Where a session's monitor runs: beside the session (src/media/). */
  media: Pick<MediaPlane, 'monitor'>;
  /** Undefined: no stills (ffmpegPath is empty). */
  decoder: JpegDecoder | undefined;
  /** A still older than this asks the camera for a keyframe (default 5000 ms). */
  refreshMs?: number;
  /** Called when the fleet sends a keyframe request (for /metrics). */
  keyframeRequested?: () => void;
  /**
   * Bytes of keyframes kept, all cameras together (default 64 MiB: ~300 HD keyframes, thousands of small ones). Over
   * it, the stills nobody asked for longest go first; a camera's next keyframe brings its still back.
   */
  maxBytes?: number;
}

export interface Still {
  jpeg: Buffer;
  /** When its keyframe arrived, ms since the epoch. */
  at: number;
}

export interface CameraHealth extends CameraRates {
  deviceId: string;
  sessionId: string;
  state: CameraSession['state'];
  streamingSince: number | undefined;
  codecs: string[];
  /** When the latest still's keyframe arrived; undefined: none yet. */
  stillAt: number | undefined;
}

export class Fleet {
  readonly #options: FleetOptions;
  readonly #monitors = new Map<string, CameraWatch>();
  /** In order of last use (a still asked for moves its camera to the end): the first ones go when over maxBytes. */
  readonly #keyframes = new Map<string, Keyframe>();
  #keptBytes = 0;
  readonly #stills = new Map<string, { at: number; jpeg: Promise<Buffer> }>();
  readonly #asked = new Map<string, number>();
  #closed = false;

  constructor(options: FleetOptions) {
    this.#options = options;
  }

  get stillsEnabled(): boolean {
    return this.#options.decoder !== undefined;
  }

  attach(answerer: Answerer): void {
    answerer.on('session', (session) => this.#follow(session));
    for (const session of answerer.sessions.values()) this.#follow(session);
  }

  /** Live sessions' health, one entry per camera this node answers. */
  health(): CameraHealth[] {
    return [...this.#monitors.values()].map((m) => ({
      deviceId: m.session.deviceId,
      sessionId: m.session.sessionId,
      state: m.session.state,
      streamingSince: m.streamingSince,
      codecs: m.session.codecs.map((c) => c.codec),
      stillAt: this.#keyframes.get(m.session.deviceId)?.at,
      ...m.rates,
    }));
  }

  /**
   * The device's latest still, or undefined when no keyframe was seen yet (one is asked for if the camera streams).
   * Rejects with DecodeError when ffmpeg cannot make it.
   */
  async still(deviceId: string): Promise<Still | undefined> {
    const keyframe = this.#keyframes.get(deviceId);
    if (keyframe !== undefined) {
      this.#keyframes.delete(deviceId); // to the end: the most recently used
      this.#keyframes.set(deviceId, keyframe);
    }
    const refreshMs = this.#options.refreshMs ?? 5000;
    if (keyframe === undefined || Date.now() - keyframe.at > refreshMs) this.#askForKeyframe(deviceId, refreshMs);
    if (keyframe === undefined || this.#options.decoder === undefined) return undefined;
    let cached = this.#stills.get(deviceId);
    if (cached?.at !== keyframe.at) {
      cached = { at: keyframe.at, jpeg: this.#options.decoder.decode(keyframe) };
      this.#stills.set(deviceId, cached);
      // A failed decode is not cached: the next request (or keyframe) tries again.
      cached.jpeg.catch(() => this.#stills.get(deviceId) === cached && this.#stills.delete(deviceId));
    }
    return { jpeg: await cached.jpeg, at: cached.at };
  }

  /** Drops what is kept of a device (it was removed). */
  forget(deviceId: string): void {
    this.#drop(deviceId);
    this.#asked.delete(deviceId);
  }

  /** Bytes of keyframes kept now (for tests and the bound above). */
  get keptBytes(): number {
    return this.#keptBytes;
  }

  #keep(keyframe: Keyframe): void {
    this.#drop(keyframe.deviceId);
    this.#keyframes.set(keyframe.deviceId, keyframe);
    this.#keptBytes += keyframe.data.length;
    const max = this.#options.maxBytes ?? 64 * 1024 * 1024;
    for (const id of this.#keyframes.keys()) {
      if (this.#keptBytes <= max || id === keyframe.deviceId) break;
      this.#drop(id);
    }
  }

  #drop(deviceId: string): void {
    const kept = this.#keyframes.get(deviceId);
    if (kept !== undefined) this.#keptBytes -= kept.data.length;
    this.#keyframes.delete(deviceId);
    this.#stills.delete(deviceId);
  }

  close(): void {
    this.#closed = true;
    for (const monitor of this.#monitors.values()) monitor.close();
    this.#monitors.clear();
  }

  #follow(session: CameraSession): void {
    if (this.#closed || session.state === 'closed') return;
    const deviceId = session.deviceId;
    this.#monitors.get(deviceId)?.close();
    const monitor = this.#options.media.monitor(session, (keyframe) => this.#keep(keyframe));
    this.#monitors.set(deviceId, monitor);
    session.once('closed', () => {
      monitor.close();
      if (this.#monitors.get(deviceId) === monitor) this.#monitors.delete(deviceId);
    });
  }

  #askForKeyframe(deviceId: string, refreshMs: number): void {
    const session = this.#monitors.get(deviceId)?.session;
    const last = this.#asked.get(deviceId) ?? Number.NEGATIVE_INFINITY;
    if (session?.state !== 'streaming' || performance.now() - last < refreshMs) return;
    this.#asked.set(deviceId, performance.now());
    session.requestKeyframe();
    this.#options.keyframeRequested?.();
  }
}
