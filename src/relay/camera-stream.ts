/**
 * One camera's media, fanned out: at most one upstream session (the camera's) and any number of viewers. No
 * transcoding: the camera's RTP goes to each viewer as is, with werift rewriting SSRC, payload type and, across
 * camera re-offers, sequence numbers and timestamps. The packets go from session to viewers where both live, on one
 * media worker (src/media/host.ts); this stream drives them: who is served with which codecs, when they switch
 * source, their stream state and the keyframe requests.
 *
 *   stream state, as viewers see it (`stream` messages):
 *     waiting ──first RTP──► live ──camera session ends──► ended ──new session's first RTP──► live
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { CameraSession } from '../answerer/session.ts';
import { KeyframeRequests } from './keyframe-requests.ts';
import type { StreamState, Viewer } from './viewer.ts';

export interface CameraStreamOptions {
  deviceId: string;
  /** Least milliseconds between keyframe requests sent to the camera (./keyframe-requests.ts). */
  keyframeIntervalMs: number;
  /** Milliseconds a keyframe request waits for the camera's keyframe before it is sent again. */
  keyframeRetryMs: number;
  /** Milliseconds without viewers (and not wanted otherwise) before the camera is told to stop; 0 never. */
  idleStopMs: number;
  /** Asks the camera to offer (a `start` on its down topic). */
  askToStart: () => void;
  /** Whether something other than a viewer (a recording) wants the camera's media, so it must not be stopped. */
  wanted: () => boolean;
  logger: Logger;
}

export interface CameraStreamEvents {
  /** Nobody watches and no camera session is left: the relay may forget this stream. */
  unused: [];
  /** A keyframe request went to the camera (viewers' needs, coalesced; retries included). */
  keyframeRequested: [];
}

export class CameraStream extends EventEmitter<CameraStreamEvents> {
  readonly deviceId: string;
  readonly viewers = new Set<Viewer>();
  readonly keyframes: KeyframeRequests;
  readonly #options: CameraStreamOptions;
  readonly #log: Logger;
  #upstream: CameraSession | undefined;
  #state: StreamState = 'waiting';
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(options: CameraStreamOptions) {
    super();
    this.deviceId = options.deviceId;
    this.#options = options;
    this.#log = options.logger.child({ deviceId: options.deviceId });
    this.keyframes = new KeyframeRequests({
      send: () => {
        this.#upstream?.requestKeyframe();
        this.emit('keyframeRequested');
      },
      retryMs: options.keyframeRetryMs,
      minIntervalMs: options.keyframeIntervalMs,
    });
  }

  get state(): StreamState {
    return this.#state;
  }

  get upstream(): CameraSession | undefined {
    return this.#upstream;
  }

  /** A new camera session (a first offer or a re-offer): viewers move to it without renegotiating. */
  attach(session: CameraSession): void {
    const previous = this.#upstream;
    this.#upstream = session;
    if (previous !== undefined && this.#state === 'live') this.#setState('ended');
    // A request to the previous session is moot: the viewers' next needs ask this one.
    this.keyframes.reset();
    session.on('keyframe', () => this.#upstream === session && this.keyframes.received());
    session.on('state', (state) => {
      if (this.#upstream !== session) return;
      if (state === 'connecting') void this.#serveWaiting();
      if (state === 'streaming') this.#onLive();
      if (state === 'closed') this.#upstreamEnded(session);
    });
    session.once('closed', () => this.#upstreamEnded(session));
    for (const viewer of this.viewers) viewer.sourceChanged();
  }

  /** A viewer joins: served at once if the camera's codecs are known, else after the camera is asked to start. */
  add(viewer: Viewer): void {
    clearTimeout(this.#idleTimer);
    this.viewers.add(viewer);
    // Not live: nothing to ask yet, and going live asks anyway.
    viewer.on('keyframeRequest', () => this.#state === 'live' && this.keyframes.needed());
    viewer.once('closed', () => {
      this.viewers.delete(viewer);
      this.#onDemandDropped();
    });
    const upstream = this.#upstream;
    if (upstream !== undefined && upstream.codecs.length > 0) {
      void this.#serve(viewer, upstream);
      if (this.#state === 'live') viewer.notify('live');
      return;
    }
    viewer.notify('waiting');
    if (upstream === undefined) this.#options.askToStart();
  }

  close(): void {
    clearTimeout(this.#idleTimer);
    this.keyframes.close();
    this.removeAllListeners();
  }

  async #serve(viewer: Viewer, upstream: CameraSession): Promise<void> {
    const refused = await viewer.serve(upstream.codecs);
    if (refused) viewer.log.warn({ code: refused.code }, refused.message);
  }

  /** The upstream was answered: its codecs are known, so waiting viewers can be answered now. */
  async #serveWaiting(): Promise<void> {
    const upstream = this.#upstream;
    if (upstream === undefined) return;
    for (const viewer of this.viewers) {
      if (viewer.state !== 'waiting') continue;
      void this.#serve(viewer, upstream);
    }
  }

  #onLive(): void {
    this.#setState('live');
    // A camera codec change (it re-offered with H264 instead of VP8) cannot be hidden from a viewer: watch again.
    const codecs = JSON.stringify(this.#upstream?.codecs ?? []);
    for (const viewer of this.viewers) {
      if (viewer.state !== 'waiting' && viewer.state !== 'answering' && JSON.stringify(viewer.codecs) !== codecs) {
        void viewer.close('replaced');
      }
    }
    this.keyframes.needed();
  }

  /**
   * The session is over from its `state: closed` on: its bye went out with it, and `closed` follows only once its peer
   * has closed (later still from a media worker). A viewer that watches in between — the camera got its bye, its
   * next viewer came — must ask the camera to start, not be served by a session that sends nothing any more.
   */
  #upstreamEnded(session: CameraSession): void {
    if (this.#upstream !== session) return;
    this.#upstream = undefined;
    if (this.#state !== 'waiting') this.#setState('ended');
    this.#maybeUnused();
  }

  #setState(state: StreamState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#log.debug({ state, viewers: this.viewers.size }, 'stream state');
    for (const viewer of this.viewers) viewer.notify(state);
  }

  #onDemandDropped(): void {
    if (this.viewers.size > 0) return;
    if (this.#options.idleStopMs > 0 && this.#upstream !== undefined) {
      const upstream = this.#upstream;
      this.#idleTimer = setTimeout(() => {
        if (this.viewers.size > 0 || this.#options.wanted()) return;
        this.#log.info('no viewers and no recording: asking the camera to stop');
        void upstream.close('normal', { notify: true });
      }, this.#options.idleStopMs);
    }
    this.#maybeUnused();
  }

  #maybeUnused(): void {
    if (this.viewers.size === 0 && this.#upstream === undefined) this.emit('unused');
  }
}
