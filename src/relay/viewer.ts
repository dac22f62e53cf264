/**
 * One viewer watching one camera through the relay: a sendonly werift peer fed with the camera's RTP.
 *
 *              codecs known          answer sent           ICE + DTLS up
 *   waiting ───────────────► answering ──────────► connecting ─────────────► connected
 *      │                                               │                        │
 *      └──── bye · leave · timeout · ice-failed · replaced · shutdown · error ──┴──► closed
 *
 * A session belongs to an owner (./owner.ts): the MQTT connection that watched, until an `adopt` moves it to the
 * same viewer's next connection (a token refresh). It ends with its owner (`leave`), and waits for a camera that has
 * no session at most `waitTimeoutMs` (bye "timeout").
 *
 * Video is forwarded from a keyframe on (the first packet of one): before it, and again after the camera
 * re-offers, the viewer's decoder would only get frames that reference pictures it never saw. Until that keyframe
 * comes, the viewer asks again every KEYFRAME_RETRY_MS: a camera may drop a request (libwebrtc senders ignore one
 * within 300 ms of the last, video/encoder_rtcp_feedback.cc), and a viewer that is sent nothing never sends a PLI
 * of its own.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { RtpPacket } from 'werift';
import { ProtocolError } from '../protocol/errors.ts';
import type { ByeReason, Candidate, IceServers, Message, Watch } from '../protocol/messages.ts';
import { PROTOCOL_VERSION } from '../protocol/topics.ts';
import type { CodecName } from '../webrtc/codecs.ts';
import { startsKeyframe, type VideoCodec } from '../webrtc/keyframe.ts';
import { candidateMessage, Peer, type LocalTrack, type PeerOptions, type RemoteCandidate, type RemoteTrack, type SelectedPair } from '../webrtc/peer.ts';
import { dropRepeatedCandidates, SdpError } from '../webrtc/sdp.ts';
import type { Listens } from '../media/listens.ts';
import type { ViewerOwner } from './owner.ts';

export const VIEWER_STATES = ['waiting', 'answering', 'connecting', 'connected', 'closed'] as const;
export type ViewerState = (typeof VIEWER_STATES)[number];
export type StreamState = 'waiting' | 'live' | 'ended';

export interface ViewerOptions {
  /** Where its messages go, and whose it is. */
  owner: ViewerOwner;
  watch: Watch;
  /** Options of the bridge's peer, asked for when the camera's media is there (fresh TURN credentials). */
  peer: () => PeerOptions;
  /** The viewer's own ICE servers (TURN credentials for its next attempts), sent with the answer. */
  iceServers?: (() => IceServers | undefined) | undefined;
  /** This node's ID, named in the answer (a viewer watches again when that node's card goes offline). */
  bridgeId?: string | undefined;
  /** Milliseconds from answer to connected before giving up. */
  connectTimeoutMs: number;
  /** Milliseconds to wait for a camera that has no session (its codecs unknown) before giving up. */
  waitTimeoutMs: number;
  logger: Logger;
  /** Called for every packet forwarded (metrics). */
  onSent?: ((kind: 'audio' | 'video', payloadBytes: number) => void) | undefined;
}

export interface ViewerEvents {
  state: [ViewerState];
  keyframeRequest: [];
  closed: [ByeReason];
}

/**
 * A viewer session as the relay, WHEP and metrics drive it: the ViewerSession itself, or its handle on the main thread
 * when it runs in a media worker (src/media/). Its camera's packets reach it where it lives (src/media/host.ts).
 */
export interface Viewer extends Listens<ViewerEvents, Viewer> {
  readonly viewerId: string;
  readonly sessionId: string;
  readonly deviceId: string;
  readonly connection: string | undefined;
  readonly log: Logger;
  readonly owner: ViewerOwner;
  readonly packetsSent: number;
  readonly bytesSent: number;
  readonly state: ViewerState;
  readonly selectedPair: SelectedPair | undefined;
  readonly codecs: { kind: 'audio' | 'video'; codec: CodecName }[];
  ownedBy(owner: ViewerOwner): boolean;
  adopt(owner: ViewerOwner, stream: StreamState): void;
  ownerLeft(owner: ViewerOwner): void;
  serve(codecs: readonly { kind: 'audio' | 'video'; codec: CodecName }[]): Promise<ProtocolError | undefined>;
  sourceChanged(): void;
  notify(state: StreamState): void;
  addCandidate(message: Candidate): void;
  close(reason: ByeReason, options?: { notify?: boolean }): Promise<void>;
}

/** Milliseconds between keyframe requests while a connected viewer still waits for its first keyframe. */
export const KEYFRAME_RETRY_MS = 1000;

/** A browser gathers a handful of host candidates (plus srflx/relay ones with STUN/TURN); more is not a viewer. */
const MAX_EARLY_CANDIDATES = 32;

interface SendingTrack extends LocalTrack {
  lastSentAt: number;
}

export class ViewerSession extends EventEmitter<ViewerEvents> {
  /** The user it is watched for. */
  readonly viewerId: string;
  readonly sessionId: string;
  readonly deviceId: string;
  /** The secret the watch named (`connection`): an `adopt` must name it too. */
  readonly connection: string | undefined;
  readonly log: Logger;
  packetsSent = 0;
  bytesSent = 0;
  readonly #options: ViewerOptions;
  #state: ViewerState = 'waiting';
  #owner: ViewerOwner;
  /** The owner before the last `adopt`, until it leaves: its late candidates and bye still count. */
  #previousOwner: ViewerOwner | undefined;
  #stream: StreamState | undefined;
  #peer: Peer | undefined;
  readonly #tracks = new Map<'audio' | 'video', SendingTrack>();
  #videoStarted = false;
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #keyframeRetry: NodeJS.Timeout | undefined;
  /** Candidates the viewer trickled while the camera was not streaming yet (before this session had a peer). */
  readonly #early: RemoteCandidate[] = [];

  constructor(options: ViewerOptions) {
    super();
    this.#owner = options.owner;
    this.viewerId = options.owner.user;
    this.sessionId = options.watch.sessionId;
    this.deviceId = options.watch.deviceId;
    this.connection = options.watch.connection;
    this.#options = options;
    this.log = options.logger.child({ viewerId: this.viewerId, sessionId: this.sessionId, deviceId: this.deviceId });
    this.#timer = setTimeout(() => {
      this.log.info({ waitTimeoutMs: options.waitTimeoutMs }, 'the camera did not start: viewer session ends');
      void this.close('timeout');
    }, options.waitTimeoutMs);
  }

  get owner(): ViewerOwner {
    return this.#owner;
  }

  /** Whether messages from `owner` may steer this session: its owner's, or those of the one it was adopted from. */
  ownedBy(owner: ViewerOwner): boolean {
    return owner.key === this.#owner.key || owner.key === this.#previousOwner?.key;
  }

  /**
   * Another connection of the same viewer takes the session over (`adopt`); the camera's state is said again on it,
   * which confirms the move. The previous owner's late messages still count until it leaves.
   */
  adopt(owner: ViewerOwner, stream: StreamState): void {
    if (this.#state === 'closed' || owner.key === this.#owner.key) return;
    this.log.info({ from: this.#owner.key, to: owner.key }, 'adopted by another connection');
    this.#previousOwner = this.#owner;
    this.#owner = owner;
    this.#stream = undefined;
    this.notify(stream);
  }

  /** An owner's connection ended: the session ends with its owner; a previous owner is just forgotten. */
  ownerLeft(owner: ViewerOwner): void {
    if (owner.key === this.#previousOwner?.key) this.#previousOwner = undefined;
    if (owner.key === this.#owner.key) void this.close('normal', { notify: false });
  }

  get state(): ViewerState {
    return this.#state;
  }

  /** The ICE pair the media goes over, once connected (relay on either side: through a TURN server). */
  get selectedPair(): SelectedPair | undefined {
    return this.#peer?.selectedPair;
  }

  /** The codecs this viewer receives, once served. */
  get codecs(): { kind: 'audio' | 'video'; codec: CodecName }[] {
    return [...this.#tracks.values()].map(({ kind, codec }) => ({ kind, codec }));
  }

  /**
   * Answers the viewer's offer with the camera's codecs. Never throws: a refused offer closes the session and
   * comes back as the error to send.
   */
  async serve(codecs: readonly { kind: 'audio' | 'video'; codec: CodecName }[]): Promise<ProtocolError | undefined> {
    if (this.#state !== 'waiting') return undefined;
    clearTimeout(this.#timer);
    this.#setState('answering');
    const pick = (kind: 'audio' | 'video') => codecs.filter((c) => c.kind === kind).map((c) => c.codec);
    const peer = new Peer({ ...this.#options.peer(), direction: 'sendonly', codecs: { video: pick('video'), audio: pick('audio') } });
    this.#peer = peer;
    for (const candidate of this.#early.splice(0)) peer.addRemoteCandidate(candidate); // the Peer holds them until it answers
    peer.on('state', (state) => {
      if (state === 'connected' && this.#state === 'connecting') {
        clearTimeout(this.#timer);
        this.#setState('connected');
        this.log.info({ selectedPair: peer.selectedPair }, 'viewer connected');
        this.#awaitKeyframe();
      } else if (state === 'failed') {
        void this.close('ice-failed');
      }
    });
    peer.on('keyframeRequest', () => this.emit('keyframeRequest'));
    let sdp: string;
    try {
      sdp = dropRepeatedCandidates(await peer.answer(this.#options.watch.sdp));
    } catch (err) {
      if (this.#closed()) return undefined;
      const code = err instanceof SdpError ? (err.kind === 'invalid' ? 'TALI_ERR_INVALID_SDP' : 'TALI_ERR_NO_COMMON_CODEC') : 'TALI_ERR_INTERNAL';
      if (code === 'TALI_ERR_INTERNAL') this.log.error({ err }, 'answering viewer failed');
      await this.close('error', { notify: false });
      return new ProtocolError(code, (err as Error).message.slice(0, 200), { sessionId: this.sessionId, seq: 1, type: 'watch' });
    }
    if (this.#closed()) return undefined;
    for (const track of peer.localTracks) this.#tracks.set(track.kind, { ...track, lastSentAt: performance.now() });
    // Before the answer, which the viewer's SDK acts on: credentials for its next attempts (this one has gathered).
    const ice = this.#options.iceServers?.();
    if (ice) this.#owner.send(ice);
    this.#send({ type: 'answer', sdp, ...(this.#options.bridgeId !== undefined && { bridgeId: this.#options.bridgeId }) });
    peer.trickleLate((candidate) => this.#send(candidateMessage(candidate))); // a relay candidate of a slow TURN server
    this.#setState('connecting');
    this.#timer = setTimeout(() => void this.close('timeout'), this.#options.connectTimeoutMs);
    return undefined;
  }

  /** Forwards one packet of the camera's; drops what this viewer cannot decode yet. Hot path: no allocation. */
  forward(track: RemoteTrack, packet: RtpPacket): void {
    if (this.#state !== 'connected') return;
    const local = this.#tracks.get(track.kind);
    if (local === undefined || local.codec !== track.codec) return;
    if (track.kind === 'video' && !this.#videoStarted) {
      if (!startsKeyframe(track.codec as VideoCodec, packet.payload)) return;
      this.#videoStarted = true;
      clearInterval(this.#keyframeRetry);
    }
    local.lastSentAt = performance.now();
    this.packetsSent++;
    this.bytesSent += packet.payload.length;
    this.#options.onSent?.(track.kind, packet.payload.length);
    this.#peer?.send(track.kind, packet);
  }

  /**
   * The camera's packets now come from a new upstream session: continue this viewer's sequence numbers and move its
   * timestamps on by the time that passed, then wait for a keyframe of the new source.
   */
  sourceChanged(): void {
    const now = performance.now();
    for (const track of this.#tracks.values()) {
      this.#peer?.sourceChanged(track.kind, ((now - track.lastSentAt) / 1000) * track.clockRate);
    }
    this.#videoStarted = false;
    if (this.#state === 'connected') this.#awaitKeyframe();
  }

  notify(state: StreamState): void {
    if (this.#state === 'closed' || state === this.#stream) return;
    this.#stream = state;
    this.#send({ type: 'stream', deviceId: this.deviceId, state });
  }

  /** End of candidates is dropped (see Peer.addRemoteCandidate for why). */
  addCandidate(message: Candidate): void {
    if (message.endOfCandidates || message.candidate === undefined) return;
    const candidate = { candidate: message.candidate, sdpMid: message.sdpMid, sdpMLineIndex: message.sdpMLineIndex };
    if (this.#peer) this.#peer.addRemoteCandidate(candidate);
    // Still waiting for the camera: no peer yet. A browser trickles right after its watch, so keep them (a few).
    else if (this.#early.length < MAX_EARLY_CANDIDATES) this.#early.push(candidate);
  }

  /** Idempotent; `notify` sends the viewer a bye (not when the viewer itself ended it). */
  async close(reason: ByeReason, options: { notify?: boolean } = {}): Promise<void> {
    if (this.#state === 'closed') return;
    if (options.notify ?? reason !== 'normal') this.#send({ type: 'bye', reason });
    clearTimeout(this.#timer);
    clearInterval(this.#keyframeRetry);
    this.#setState('closed');
    await this.#peer?.close();
    this.log.info({ reason, packetsSent: this.packetsSent }, 'viewer closed');
    this.emit('closed', reason);
    this.removeAllListeners();
  }

  /** Asks for a keyframe now and again every KEYFRAME_RETRY_MS until one is forwarded (only with video). */
  #awaitKeyframe(): void {
    this.emit('keyframeRequest');
    clearInterval(this.#keyframeRetry);
    if (!this.#tracks.has('video')) return;
    this.#keyframeRetry = setInterval(() => this.emit('keyframeRequest'), KEYFRAME_RETRY_MS);
  }

  #send(body: Record<string, unknown> & { type: string }): void {
    const seq = this.#seq + 1;
    this.#owner.send({ v: PROTOCOL_VERSION, sessionId: this.sessionId, seq, ts: Date.now(), ...body } as Message);
    this.#seq = seq;
  }

  /** A method, not a field read, so the compiler does not carry a narrowed state across an await. */
  #closed(): boolean {
    return this.#state === 'closed';
  }

  #setState(state: ViewerState): void {
    this.#state = state;
    this.emit('state', state);
  }
}
