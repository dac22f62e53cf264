/**
 * The media plane: the one seam between signaling (answerer, relay, recorder, fleet on the main thread) and the
 * media objects (werift peers and what reads their packets). Signaling asks the plane for a camera session, a viewer
 * session, a recording or a fleet monitor and drives what it gets back through interfaces (CameraSession, Viewer,
 * SessionRecording, CameraWatch); where the object runs is the plane's business (docs/architecture.md "Media workers"):
 *
 *   InThreadMedia  (mediaWorkers 1)   a MediaHost on the main thread; returns the objects themselves
 *   WorkerMedia    (mediaWorkers ≥ 2) MediaHosts in worker threads; returns handles (./worker-media.ts, ./remote.ts)
 */
import type { CameraSession, Session, SessionOptions } from '../answerer/session.ts';
import type { CameraWatch, Keyframe } from '../fleet/camera-monitor.ts';
import type { SessionRecorderOptions, SessionRecording } from '../recording/session-recorder.ts';
import type { Viewer, ViewerOptions } from '../relay/viewer.ts';
import { Peer } from '../webrtc/peer.ts';
import { MediaHost, type MediaKind } from './host.ts';

/** Where the plane counts packets: the bridge's metrics (per packet, or in sums once a second from workers). */
export interface PacketSink {
  received(kind: MediaKind, payloadBytes: number, packets: number): void;
  sent(kind: MediaKind, payloadBytes: number, packets: number): void;
  caughtUp(sends: number): void;
}

export interface MediaPlane {
  /** A camera session (not opened yet: the caller registers it, then calls open()). */
  openSession(options: SessionOptions): CameraSession;
  /** A viewer session, beside its camera's sessions: it receives the packets of every session of that device. */
  createViewer(options: Omit<ViewerOptions, 'onSent'>): Viewer;
  /** Records a session made by this plane, beside it. */
  record(session: CameraSession, options: SessionRecorderOptions): SessionRecording;
  /** The fleet's rates and keyframes of a session made by this plane, beside it. */
  monitor(session: CameraSession, onKeyframe: (keyframe: Keyframe) => void): CameraWatch;
  /**
   * Pays the first-use cost before the first camera does: werift's on this thread, or with media workers and option
   * mediaWorkersPrestart, every worker thread's start (otherwise they start with their first camera). Memoized.
   */
  warmUp(): Promise<void>;
  /** Brings every handle's counters (stats, packets sent, rates) up to date; they are otherwise ≤ 1 s old. */
  refresh(): Promise<void>;
  /**
   * After the sessions, viewers and recordings were closed: ends what is left and releases the rest (threads,
   * timers). Media workers that have not finished within `graceMs` are terminated; it resolves once no thread is
   * left. Idempotent: a later call returns the same promise (and may shorten the grace).
   */
  close(graceMs?: number): Promise<void>;
}

/** One media worker: the main thread's own event loop, with the objects themselves. */
export class InThreadMedia implements MediaPlane {
  readonly #host: MediaHost;
  #warm: Promise<void> | undefined;

  constructor(sink: PacketSink) {
    this.#host = new MediaHost({ received: (kind, bytes) => sink.received(kind, bytes, 1), sent: (kind, bytes) => sink.sent(kind, bytes, 1), caughtUp: (sends) => sink.caughtUp(sends) });
  }

  openSession(options: SessionOptions): CameraSession {
    return this.#host.openSession(options);
  }

  createViewer(options: Omit<ViewerOptions, 'onSent'>): Viewer {
    return this.#host.createViewer(options);
  }

  // The sessions this plane hands out are Sessions.
  record(session: CameraSession, options: SessionRecorderOptions): SessionRecording {
    return this.#host.record(session as Session, options);
  }

  monitor(session: CameraSession, onKeyframe: (keyframe: Keyframe) => void): CameraWatch {
    return this.#host.monitor(session as Session, onKeyframe);
  }

  warmUp(): Promise<void> {
    if (this.#warm === undefined) {
      this.#warm = Peer.warmUp();
      this.#warm.catch(() => {}); // whoever awaits it sees the error
    }
    return this.#warm;
  }

  async refresh(): Promise<void> {}

  async close(): Promise<void> {
    await this.#host.close();
  }
}
