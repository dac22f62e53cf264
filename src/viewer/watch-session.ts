/**
 * One camera watched through the bridge, kept alive across failures. Each attempt is a protocol viewer session (new
 * sessionId, new peer): `watch` with a recvonly offer, trickled candidates, the bridge's `answer`, then media. The
 * session's `stream` messages say whether the camera's media flows; the session itself survives the camera leaving
 * and returning.
 *
 *   starting ── watch sent ──► waiting ── answer ──► answered ── ICE + DTLS ──► connected
 *      ▲                          │                     │                          │
 *      └── retry (backoff) ◄──────┴─ bye · error(offer/later) · peer failed · timeout · MQTT reconnect
 *   error(fix) ──► failed          close() ──► closed (bye sent)
 *
 * Browser-safe; the ViewerClient feeds it the messages of its sessions and sends what it says.
 */
import { backoffDelay, backoffOptions, type BackoffOptions } from '../client/backoff.ts';
import { TypedEmitter } from '../client/emitter.ts';
import {
  ERROR_CODES, isErrorCode, type BridgeStatus, type Bye, type Candidate, type ErrorMessage,
  type MessageOnChannel, type Stream,
} from '../protocol/index.ts';
import type { PeerIceConfig } from '../client/ice-grant.ts';
import type { IceCandidateInit, ViewerPeer, ViewerPeerFactory, ViewerPeerState } from './viewer-peer.ts';

export type WatchState = 'starting' | 'waiting' | 'answered' | 'connected' | 'retrying' | 'failed' | 'closed';
export type StreamState = Stream['state'];

/** Milliseconds since this attempt began (the app asked to watch, or the retry fired). */
export interface WatchTimeline {
  watchSent?: number;
  /** The bridge said the camera was asked to start (it had no media yet). */
  waiting?: number;
  answer?: number;
  /** ICE + DTLS connected. */
  connected?: number;
  /** The application saw the first decoded frame (the SDK cannot: it calls markFirstFrame()). */
  firstFrame?: number;
}

/** What a session sends on the viewer's up topic; the client adds v, sessionId, seq and ts. */
export type ViewerUpBody = { type: 'watch'; deviceId: string; sdp: string; connection: string } | Omit<Candidate, 'v' | 'sessionId' | 'seq' | 'ts'> | Omit<Bye, 'v' | 'sessionId' | 'seq' | 'ts'>;

/** The client side a WatchSession needs: kept narrow so tests can drive a session without MQTT. */
export interface WatchLink {
  readonly connected: boolean;
  readonly onlineBridge: BridgeStatus | undefined;
  /** The MQTT connection's ID, named in its will: a watch sent over it says so. */
  readonly connection: string;
  /** ICE servers and policy for a new peer: the bridge card's and the viewer's own (TURN). */
  iceConfig(): PeerIceConfig;
  newSessionId(): string;
  send(sessionId: string, body: ViewerUpBody): Promise<void>;
  /** The session is over: forget its counters and stop routing its messages here. */
  forget(sessionId: string): void;
  /** Route the messages of `sessionId` to this watch. */
  route(sessionId: string, watch: WatchSession): void;
}

export interface WatchOptions {
  /** Milliseconds from `watch` to the bridge's first reply (answer or stream) before trying again (default 10 000). */
  replyTimeoutMs?: number | undefined;
  /** Milliseconds from answer to connected before trying again (default 20 000). */
  connectTimeoutMs?: number | undefined;
  backoff?: Partial<BackoffOptions> | undefined;
}

export interface WatchEvents {
  state: [WatchState];
  stream: [StreamState];
  /** A new peer for a new attempt: attach its media (the previous one is closed). */
  peer: [ViewerPeer];
  timeline: [WatchTimeline];
  retry: [{ attempt: number; delayMs: number; reason: string }];
  /** An `error` from the bridge about this watch. */
  error: [ErrorMessage];
}

export class WatchSession extends TypedEmitter<WatchEvents> {
  readonly deviceId: string;
  readonly #link: WatchLink;
  readonly #createPeer: ViewerPeerFactory;
  readonly #options: WatchOptions;
  readonly #backoff: BackoffOptions;
  #state: WatchState = 'starting';
  #stream: StreamState | undefined;
  #sessionId: string | undefined;
  #peer: ViewerPeer | undefined;
  #timeline: WatchTimeline = {};
  #t0 = 0;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Local candidates gathered before `watch` went out (seq 1 must be the watch); undefined once it did. */
  #earlyLocal: (IceCandidateInit | null)[] | undefined;
  /** Bridge candidates that came before the answer was applied; undefined once it was. */
  #earlyRemote: (IceCandidateInit | null)[] | undefined;
  #closed: Promise<void> | undefined;
  /** The bridge node serving the current session, when its answer named one. */
  #servedBy: string | undefined;
  /** The current attempt's peer was created with the viewer's own ICE servers (TURN credentials). */
  #withGrant = false;

  constructor(deviceId: string, link: WatchLink, createPeer: ViewerPeerFactory, options: WatchOptions = {}) {
    super();
    this.deviceId = deviceId;
    this.#link = link;
    this.#createPeer = createPeer;
    this.#options = options;
    this.#backoff = backoffOptions(options.backoff);
  }

  get state(): WatchState {
    return this.#state;
  }

  /** The camera's media as the bridge last reported it for this session; undefined before it said. */
  get stream(): StreamState | undefined {
    return this.#stream;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  get peer(): ViewerPeer | undefined {
    return this.#peer;
  }

  get timeline(): WatchTimeline {
    return { ...this.#timeline };
  }

  /** Milliseconds since the current attempt began: the origin of `timeline`, for the application's own milestones. */
  elapsed(): number {
    return Math.round((performance.now() - this.#t0) * 10) / 10;
  }

  /** The application decoded its first frame of this attempt. */
  markFirstFrame(): void {
    this.#mark('firstFrame');
  }

  /** Starts an attempt now if connected and idle; the client calls it on (re)connect. */
  begin(): void {
    if (this.#closed || this.#state === 'failed' || !this.#link.connected || this.#sessionId !== undefined) return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    void this.#attemptWatch();
  }

  /** The bridge no longer has this session (e.g. it stayed with a connection that is gone): watch again at once. */
  restart(reason: string): void {
    if (this.#closed || this.#sessionId === undefined) return;
    void this.#retry(reason, true);
  }

  /** The MQTT connection went: the bridge ends our sessions on our will (`leave`), so this attempt is over. */
  connectionLost(): void {
    if (this.#closed || this.#sessionId === undefined) return;
    void this.#endAttempt(undefined);
    this.#setState('retrying');
  }

  /**
   * A bridge card went offline. If that node serves this session (it said so in its answer), the session died with
   * it: watch again at once; another node serves the camera now, or says `waiting`.
   */
  bridgeOffline(bridgeId: string): void {
    if (this.#closed || this.#servedBy !== bridgeId || this.#sessionId === undefined) return;
    void this.#retry(`bridge-offline:${bridgeId}`, true);
  }

  /**
   * The viewer's own ICE servers (TURN credentials) arrived, e.g. with the bridge's answer to a viewer that logged in
   * with a password. An attempt that gathered without them and has no answer applied yet starts again at once with
   * them, rather than failing after seconds where only TURN gets through.
   */
  iceServersArrived(): void {
    if (this.#closed || this.#sessionId === undefined || this.#withGrant || this.#timeline.answer !== undefined) return;
    void this.#retry('ice-servers', true, 'normal');
  }

  /** Ends the watch: bye for the live session, the peer closed, every timer cleared. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearTimeout(this.#retryTimer);
      await this.#endAttempt('normal');
      this.#setState('closed');
      this.removeAllListeners();
    })();
    return this.#closed;
  }

  /** A message of our current session from the bridge (already de-duplicated by the client). */
  receive(message: MessageOnChannel<'viewer-down'>): void {
    // ice-servers belong to the client (ViewerClient.iceGrant), not to a session.
    if (this.#closed || message.type === 'ice-servers' || message.sessionId !== this.#sessionId) return;
    switch (message.type) {
      case 'answer':
        this.#servedBy = message.bridgeId;
        void this.#onAnswer(message.sdp);
        return;
      case 'candidate':
        this.#onRemoteCandidate(message.endOfCandidates ? null : { candidate: message.candidate ?? '', sdpMid: message.sdpMid, sdpMLineIndex: message.sdpMLineIndex });
        return;
      case 'stream':
        this.#onStream(message.state);
        return;
      case 'bye':
        void this.#retry(`bye:${message.reason ?? 'normal'}`, message.reason === 'replaced');
        return;
      case 'error':
        this.#onError(message);
        return;
    }
  }

  async #attemptWatch(): Promise<void> {
    const bridge = this.#link.onlineBridge;
    const sessionId = this.#link.newSessionId();
    this.#sessionId = sessionId;
    this.#t0 = performance.now();
    this.#timeline = {};
    this.#stream = undefined;
    this.#earlyLocal = [];
    this.#earlyRemote = [];
    this.#link.route(sessionId, this);
    this.#setState('starting');
    let peer: ViewerPeer;
    try {
      const { iceServers, iceTransportPolicy, withGrant } = this.#link.iceConfig();
      this.#withGrant = withGrant;
      peer = this.#createPeer(iceServers, { iceTransportPolicy });
    } catch (err) {
      return this.#retry(`peer-failed: ${(err as Error).message}`);
    }
    this.#peer = peer;
    peer.onLocalCandidate = (candidate) => {
      if (sessionId !== this.#sessionId) return;
      if (this.#earlyLocal) this.#earlyLocal.push(candidate);
      else this.#sendCandidate(sessionId, candidate);
    };
    peer.onStateChange = (state) => this.#onPeerState(sessionId, state);
    this.emit('peer', peer);
    let sdp: string;
    try {
      sdp = await peer.createOffer();
    } catch (err) {
      if (sessionId === this.#sessionId) void this.#retry(`offer-failed: ${(err as Error).message}`);
      return;
    }
    if (sessionId !== this.#sessionId) return;
    const sent = this.#link.send(sessionId, { type: 'watch', deviceId: this.deviceId, sdp, connection: this.#link.connection }); // numbered now: seq 1
    this.#mark('watchSent');
    const early = this.#earlyLocal ?? [];
    this.#earlyLocal = undefined;
    for (const candidate of early) this.#sendCandidate(sessionId, candidate);
    this.#arm(this.#options.replyTimeoutMs ?? 10_000, 'reply-timeout');
    try {
      await sent;
    } catch (err) {
      if (sessionId === this.#sessionId) void this.#retry(`watch-not-sent: ${(err as Error).message}`);
    }
  }

  #sendCandidate(sessionId: string, candidate: IceCandidateInit | null): void {
    const body: ViewerUpBody =
      candidate === null
        ? { type: 'candidate', endOfCandidates: true }
        : { type: 'candidate', candidate: candidate.candidate, ...(candidate.sdpMid !== undefined && { sdpMid: candidate.sdpMid }), ...(candidate.sdpMLineIndex !== undefined && { sdpMLineIndex: candidate.sdpMLineIndex }) };
    // A lost candidate shows up as an ICE failure, handled there; an empty one (some stacks signal the end so) is skipped.
    if (candidate !== null && candidate.candidate === '') return;
    this.#link.send(sessionId, body).catch(() => {});
  }

  async #onAnswer(sdp: string): Promise<void> {
    const sessionId = this.#sessionId;
    const peer = this.#peer;
    if (peer === undefined || sessionId === undefined || this.#timeline.answer !== undefined) return;
    this.#mark('answer');
    this.#setState('answered');
    this.#arm(this.#options.connectTimeoutMs ?? 20_000, 'connect-timeout');
    try {
      await peer.applyAnswer(sdp);
    } catch (err) {
      if (sessionId === this.#sessionId) void this.#retry(`answer-rejected: ${(err as Error).message}`);
      return;
    }
    if (sessionId !== this.#sessionId) return;
    const early = this.#earlyRemote ?? [];
    this.#earlyRemote = undefined;
    for (const candidate of early) peer.addRemoteCandidate(candidate);
  }

  #onRemoteCandidate(candidate: IceCandidateInit | null): void {
    if (this.#earlyRemote) this.#earlyRemote.push(candidate);
    else this.#peer?.addRemoteCandidate(candidate);
  }

  #onStream(state: StreamState): void {
    if (state === 'waiting') {
      this.#mark('waiting');
      // The bridge heard us and asked the camera to start; how long a camera takes is not ours to time out.
      if (this.#state === 'starting') {
        clearTimeout(this.#timer);
        this.#setState('waiting');
      }
    }
    this.#stream = state;
    this.emit('stream', state);
  }

  #onPeerState(sessionId: string, state: ViewerPeerState): void {
    if (sessionId !== this.#sessionId) return;
    if (state === 'connected') {
      clearTimeout(this.#timer);
      this.#attempt = 0; // an attempt that made it resets the backoff
      this.#mark('connected');
      this.#setState('connected');
    } else if (state === 'failed' || state === 'closed') {
      void this.#retry(`peer-${state}`);
    }
  }

  #onError(message: ErrorMessage): void {
    this.emit('error', message);
    const retry = isErrorCode(message.code) ? ERROR_CODES[message.code].retry : 'later';
    // One unusable candidate does not make the session unusable.
    if (retry === 'fix' && message.ref?.type === 'candidate') return;
    if (retry === 'fix') {
      // The same watch would be refused again: stop here (state first, so nothing schedules a retry meanwhile).
      clearTimeout(this.#retryTimer);
      this.#setState('failed');
      void this.#endAttempt(undefined);
      return;
    }
    // TALI_ERR_STALE: the client has corrected its clock from this error; a new session at once is right.
    void this.#retry(`error:${message.code}`, message.code === 'TALI_ERR_STALE');
  }

  #arm(ms: number, reason: string): void {
    clearTimeout(this.#timer);
    const sessionId = this.#sessionId;
    this.#timer = setTimeout(() => {
      if (sessionId === this.#sessionId) void this.#retry(reason, false, 'normal');
    }, ms);
  }

  /** Ends the current attempt and schedules the next: at once, or after the backoff. */
  async #retry(reason: string, immediate = false, bye?: 'normal'): Promise<void> {
    if (this.#closed || this.#state === 'failed') return;
    const ended = this.#endAttempt(bye);
    clearTimeout(this.#retryTimer);
    const delayMs = immediate ? 0 : backoffDelay(this.#attempt, this.#backoff);
    const attempt = ++this.#attempt;
    this.#setState('retrying');
    this.emit('retry', { attempt, delayMs, reason });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.begin();
    }, delayMs);
    await ended;
  }

  /** Forgets the current session (sending `bye` if asked and possible) and closes its peer. */
  async #endAttempt(bye: 'normal' | undefined): Promise<void> {
    const sessionId = this.#sessionId;
    const peer = this.#peer;
    clearTimeout(this.#timer);
    this.#sessionId = undefined;
    this.#peer = undefined;
    this.#servedBy = undefined;
    if (sessionId === undefined) return;
    if (peer) {
      peer.onLocalCandidate = undefined;
      peer.onStateChange = undefined;
    }
    const byeSent = bye !== undefined && this.#link.connected ? this.#link.send(sessionId, { type: 'bye', reason: bye }).catch(() => {}) : undefined;
    await Promise.all([byeSent, peer?.close().catch(() => {})]);
    this.#link.forget(sessionId);
  }

  #mark(event: keyof WatchTimeline): void {
    if (this.#timeline[event] !== undefined) return;
    this.#timeline[event] = this.elapsed();
    this.emit('timeline', this.timeline);
  }

  #setState(state: WatchState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }
}
