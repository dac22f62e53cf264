/**
 * Where media objects live: the camera sessions, viewer sessions, recordings and fleet monitors of the devices placed
 * on one event loop, and the per-packet wiring between them. A camera session's packets go to the packet counters and
 * to every viewer of that camera made here (the relay's CameraStream still forwards to its own viewers until they
 * move here); the recording and the monitor listen to the session themselves.
 *
 * Forwarding waits for the end of the loop's I/O pass. A pass of libuv's poll phase serves every ready socket and
 * port in readiness order (up to 32 datagrams per UDP socket), so a packet forwarded where it is read (decrypt, then
 * encrypt and send once per viewer: ~1 ms for a packet of a camera with 25 viewers) holds back whatever is ready after
 * it: the main thread's MQTT sockets in one-worker mode, the worker's port (an offer's or a watch's command) in a
 * media worker. Read packets are queued and fanned out after the pass (the check phase), in the order read, in
 * chunks of bounded work (./fan-out.ts), each in its own pass, so what becomes ready while a burst is fanned out
 * waits for one chunk, not for the burst:
 *
 *   poll phase:   read+decrypt p1 … read+decrypt pN · port: command (answer made, batched) · MQTT reads …
 *   check phase:  beforeForward() (a worker's batch: that answer leaves) · forward p1…pk to each viewer (one chunk)
 *   poll phase:   reads · port: the next command …
 *   check phase:  beforeForward() · forward pk+1… (next chunk)
 */
import type { SessionOptions } from '../answerer/session.ts';
import { Session } from '../answerer/session.ts';
import { CameraMonitor, type Keyframe } from '../fleet/camera-monitor.ts';
import { SessionRecorder, type SessionRecorderOptions } from '../recording/session-recorder.ts';
import { ViewerSession, type ViewerOptions } from '../relay/viewer.ts';
import type { RtpPacket } from 'werift';
import type { RemoteTrack } from '../webrtc/peer.ts';
import { CHUNK_SENDS, FanOut, MAX_QUEUED_SENDS } from './fan-out.ts';

export type MediaKind = 'audio' | 'video';

/** Where received and forwarded packets are counted (the bridge's metrics). Hot path: keep them cheap. */
export interface PacketCounters {
  received(kind: MediaKind, payloadBytes: number): void;
  sent(kind: MediaKind, payloadBytes: number): void;
  /** Sends a fan-out chunk did past its budget because the queue was past its bound (./fan-out.ts). Rare. */
  caughtUp(sends: number): void;
}

export interface MediaHostOptions {
  /** Runs before each fan-out chunk, first in the check phase (a media worker sends what this pass made: answers, events). */
  beforeForward?: () => void;
  /** Sends per fan-out chunk, and sends queued before a chunk catches up past it (./fan-out.ts; defaults there). */
  chunkSends?: number;
  maxQueuedSends?: number;
}

export class MediaHost {
  readonly #counters: PacketCounters;
  /** Viewer sessions by the device they watch. */
  readonly #viewers = new Map<string, Set<ViewerSession>>();
  readonly #sessions = new Set<Session>();
  /** Packets read, to forward after the pass that read them (in the order read). */
  readonly fanOut: FanOut<ViewerSession, RemoteTrack, RtpPacket>;

  constructor(counters: PacketCounters, options: MediaHostOptions = {}) {
    this.#counters = counters;
    this.fanOut = new FanOut({
      chunkSends: options.chunkSends ?? CHUNK_SENDS,
      maxQueuedSends: options.maxQueuedSends ?? MAX_QUEUED_SENDS,
      before: options.beforeForward,
      caughtUp: (sends) => counters.caughtUp(sends),
      // A viewer that closed meanwhile forwards nothing (ViewerSession.forward checks its state).
      send: (viewer, track, packet) => viewer.forward(track, packet),
    });
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
      if (viewers !== undefined) this.fanOut.push(viewers, track, packet);
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
