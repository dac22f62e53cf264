/**
 * Where media objects live: the camera sessions, viewer sessions, recordings and fleet monitors of the devices placed
 * on one event loop, and the per-packet wiring between them. A camera session's packets go to the packet counters and
 * to every viewer of that camera made here (the relay's CameraStream still forwards to its own viewers until they
 * move here); the recording and the monitor listen to the session themselves.
 */
import type { SessionOptions } from '../answerer/session.ts';
import { Session } from '../answerer/session.ts';
import { CameraMonitor, type Keyframe } from '../fleet/camera-monitor.ts';
import { SessionRecorder, type SessionRecorderOptions } from '../recording/session-recorder.ts';
import { ViewerSession, type ViewerOptions } from '../relay/viewer.ts';

export type MediaKind = 'audio' | 'video';

/** Where received and forwarded packets are counted (the bridge's metrics). Hot path: keep them cheap. */
export interface PacketCounters {
  received(kind: MediaKind, payloadBytes: number): void;
  sent(kind: MediaKind, payloadBytes: number): void;
}

export class MediaHost {
  readonly #counters: PacketCounters;
  /** Viewer sessions by the device they watch. */
  readonly #viewers = new Map<string, Set<ViewerSession>>();
  readonly #sessions = new Set<Session>();

  constructor(counters: PacketCounters) {
    this.#counters = counters;
  }

  /** Live camera sessions and viewer sessions on this loop. */
  get size(): { sessions: number; viewers: number } {
    let viewers = 0;
    for (const set of this.#viewers.values()) viewers += set.size;
    return { sessions: this.#sessions.size, viewers };
  }

  openSession(options: SessionOptions): Session {
    const session = new Session(options);
    const counters = this.#counters;
    session.on('rtp', (track, packet) => {
      counters.received(track.kind, packet.payload.length);
      // Every session of the camera, as before: a replaced session's last packets still reach viewers, who wait for
      // the new source's keyframe anyway.
      const viewers = this.#viewers.get(session.deviceId);
      if (viewers !== undefined) for (const viewer of viewers) viewer.forward(track, packet);
    });
    this.#sessions.add(session);
    session.once('closed', () => this.#sessions.delete(session));
    return session;
  }

  createViewer(options: Omit<ViewerOptions, 'onSent'>): ViewerSession {
    const counters = this.#counters;
    const viewer = new ViewerSession({ ...options, onSent: (kind, bytes) => counters.sent(kind, bytes) });
    const { deviceId } = viewer;
    let viewers = this.#viewers.get(deviceId);
    if (viewers === undefined) {
      viewers = new Set();
      this.#viewers.set(deviceId, viewers);
    }
    viewers.add(viewer);
    viewer.once('closed', () => {
      const set = this.#viewers.get(deviceId);
      set?.delete(viewer);
      if (set?.size === 0) this.#viewers.delete(deviceId);
    });
    return viewer;
  }

  record(session: Session, options: SessionRecorderOptions): SessionRecorder {
    return new SessionRecorder(session, options);
  }

  monitor(session: Session, onKeyframe: (keyframe: Keyframe) => void): CameraMonitor {
    return new CameraMonitor(session, onKeyframe);
  }

  /** Ends what is still open (its owners normally close everything first): sessions and viewers with `reason`. */
  async close(reason: 'shutdown' | 'error' = 'shutdown'): Promise<void> {
    const viewers = [...this.#viewers.values()].flatMap((set) => [...set]);
    await Promise.all([...viewers.map((v) => v.close(reason)), ...[...this.#sessions].map((s) => s.close(reason))]);
  }
}
