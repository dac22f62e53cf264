/**
 * One camera session: a device's offer answered by one werift peer, until it closes.
 *
 *              answer sent           ICE + DTLS up          first RTP
 *   answering ─────────────► connecting ─────────► connected ─────────► streaming
 *       │                        │                     │                    │
 *       └── bye · rejected offer · ice-failed · timeout · offline · replaced · shutdown ──► closed
 *
 * close() is idempotent and releases the peer's sockets and every timer; the bridge keeps no reference afterwards.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { RtpPacket } from 'werift';
import { ProtocolError, type ErrorCode } from '../protocol/errors.ts';
import type { Answer, Bye, ByeReason, Candidate, Message, Offer } from '../protocol/messages.ts';
import { PROTOCOL_VERSION } from '../protocol/topics.ts';
import { startsKeyframe } from '../webrtc/keyframe.ts';
import { candidateMessage, Peer, type PeerOptions, type RemoteCandidate, type RemoteTrack, type SelectedPair } from '../webrtc/peer.ts';
import type { CodecName } from '../webrtc/codecs.ts';
import { checkOffer, dropRepeatedCandidates, extractCandidates, offeredCodecs, SdpError } from '../webrtc/sdp.ts';
import type { Listens } from '../media/listens.ts';
import { TimelineClock, type SessionStats, type TrackStats } from './stats.ts';

export const SESSION_STATES = ['answering', 'connecting', 'connected', 'streaming', 'closed'] as const;
export type SessionState = (typeof SESSION_STATES)[number];

export interface SessionOptions {
  deviceId: string;
  sessionId: string;
  peer: PeerOptions;
  /** Milliseconds from answer to ICE + DTLS connected before giving up (default 15 000). */
  connectTimeoutMs: number;
  /** Milliseconds without RTP, once connected, before giving up (default 10 000). */
  mediaTimeoutMs: number;
  logger: Logger;
  /** Publishes on the device's down topic; throws RangeError when the message exceeds the devices' size limit. */
  send: (message: Message) => void;
  /** This node's ID, named in the answer (in a cluster, the device learns which node serves it). */
  bridgeId?: string | undefined;
}

export interface SessionEvents {
  state: [SessionState];
  track: [RemoteTrack];
  /** The third: performance.now() when the packet arrived (read once per packet for every listener). */
  rtp: [RemoteTrack, RtpPacket, number];
  keyframe: [RemoteTrack];
  closed: [ByeReason];
}

/** A camera session's events as the main thread sees them: no RTP (packets stay on the thread of the session's peer). */
export type CameraSessionEvents = Omit<SessionEvents, 'rtp'>;

/**
 * A camera session as the answerer, the relay, the recorder, the fleet and metrics drive it: the Session itself, or
 * its handle on the main thread when it runs in a media worker (src/media/). What consumes its packets (viewers,
 * recording, fleet monitor, packet counters) is made by the media plane, beside the session.
 */
export interface CameraSession extends Listens<CameraSessionEvents, CameraSession> {
  readonly deviceId: string;
  readonly sessionId: string;
  readonly log: Logger;
  readonly state: SessionState;
  readonly stats: SessionStats;
  readonly codecs: { kind: 'audio' | 'video'; codec: CodecName }[];
  open(offer: Offer): Promise<ProtocolError | undefined>;
  addCandidate(message: Candidate): void;
  requestKeyframe(): void;
  close(reason: ByeReason, options?: { notify?: boolean }): Promise<void>;
}

type DownMessage = Omit<Answer, 'v' | 'seq' | 'ts' | 'sessionId'> | Omit<Bye, 'v' | 'seq' | 'ts' | 'sessionId'> |
  Omit<Candidate, 'v' | 'seq' | 'ts' | 'sessionId'>;

export class Session extends EventEmitter<SessionEvents> {
  readonly deviceId: string;
  readonly sessionId: string;
  readonly log: Logger;
  #state: SessionState = 'answering';
  #closeReason: ByeReason | undefined;
  readonly #options: SessionOptions;
  #peer: Peer | undefined;
  readonly #clock = new TimelineClock();
  readonly #tracks = new Map<number, TrackStats & { lastKeyframeTs: number }>();
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastRtpAt = 0;
  /** The ICE pair media flows over, once connected: whether it goes through a TURN relay. */
  #selectedPair: SelectedPair | undefined;

  constructor(options: SessionOptions) {
    super();
    this.deviceId = options.deviceId;
    this.sessionId = options.sessionId;
    this.#options = options;
    this.log = options.logger.child({ deviceId: options.deviceId, sessionId: options.sessionId });
  }

  /** Per kind, the one codec negotiated with the camera (known once answered). */
  get codecs(): { kind: 'audio' | 'video'; codec: CodecName }[] {
    return this.#peer?.receiveCodecs ?? [];
  }

  get state(): SessionState {
    return this.#state;
  }

  get stats(): SessionStats {
    const stats: SessionStats = {
      deviceId: this.deviceId,
      sessionId: this.sessionId,
      state: this.#state,
      timeline: { ...this.#clock.timeline },
      tracks: [...this.#tracks.values()].map(({ lastKeyframeTs: _, ...t }) => ({ ...t })),
    };
    if (this.#closeReason) stats.closeReason = this.#closeReason;
    if (this.#selectedPair) stats.selectedPair = { ...this.#selectedPair };
    return stats;
  }

  /**
   * Answers the offer. Never throws: a refused offer closes the session and comes back as the error to send the
   * device (the answerer owns error replies).
   */
  async open(offer: Offer): Promise<ProtocolError | undefined> {
    let sdp: string;
    try {
      const peer = this.#createPeer(offer.sdp);
      sdp = dropRepeatedCandidates(await peer.answer(offer.sdp));
    } catch (err) {
      if (this.#state === 'closed') return undefined;
      const code: ErrorCode =
        err instanceof SdpError ? (err.kind === 'invalid' ? 'TALI_ERR_INVALID_SDP' : 'TALI_ERR_NO_COMMON_CODEC') : 'TALI_ERR_INTERNAL';
      if (code === 'TALI_ERR_INTERNAL') this.log.error({ err }, 'answering failed');
      await this.close('error', { notify: false });
      const ref = { sessionId: this.sessionId, seq: offer.seq, type: 'offer' };
      return new ProtocolError(code, (err as Error).message.slice(0, 200), ref);
    }
    if (this.#state === 'closed') return undefined;
    this.#sendAnswer(sdp);
    this.#peer?.trickleLate((candidate) => this.#sendCandidate(candidate)); // a relay candidate of a slow TURN server
    this.#clock.mark('answer');
    this.#setState('connecting');
    this.#arm(this.#options.connectTimeoutMs, () => void this.close('timeout'));
    return undefined;
  }

  /** End of candidates is dropped (see Peer.addRemoteCandidate for why). */
  addCandidate(message: Candidate): void {
    if (message.candidate === undefined) return;
    this.#peer?.addRemoteCandidate({ candidate: message.candidate, sdpMid: message.sdpMid, sdpMLineIndex: message.sdpMLineIndex });
  }

  /** Sends PLI upstream (a viewer joined, a recorder started, or a viewer asked). */
  requestKeyframe(): void {
    this.#peer?.requestKeyframe();
  }

  /** Ends the session. `notify` sends the device a bye (not wanted when the device itself said bye or went away). */
  async close(reason: ByeReason, options: { notify?: boolean } = {}): Promise<void> {
    if (this.#state === 'closed') return;
    const notify = options.notify ?? !(reason === 'normal' || reason === 'offline');
    if (notify) this.#send({ type: 'bye', reason });
    this.#closeReason = reason;
    this.#clock.mark('closed');
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#setState('closed');
    await this.#peer?.close();
    this.log.info({ reason, stats: this.stats }, 'session closed');
    this.emit('closed', reason);
    this.removeAllListeners();
  }

  /** The peer negotiates one codec per kind: the camera's first choice among those tali supports. */
  #createPeer(offerSdp: string): Peer {
    checkOffer(offerSdp);
    const codecs = Peer.chooseCodecs(offerSdp);
    if (codecs.video.length + codecs.audio.length === 0) {
      const offered = offeredCodecs(offerSdp);
      throw new SdpError('no-common-codec', `offer has ${[...offered.video, ...offered.audio].join(', ') || 'no codecs'}; the bridge takes VP8, H264, opus, PCMU, PCMA`);
    }
    const peer = new Peer({ ...this.#options.peer, codecs, onRtp: (track, packet) => this.#onRtp(track, packet) });
    peer.on('state', (state) => this.#onPeerState(state));
    peer.on('iceConnected', () => this.#clock.mark('iceConnected'));
    peer.on('track', (track) => this.#onTrack(track));
    peer.on('candidateError', (candidate, err) => this.log.debug({ candidate, err: err.message }, 'remote candidate not usable'));
    this.#peer = peer;
    return peer;
  }

  #sendAnswer(sdp: string): void {
    const node = this.#options.bridgeId === undefined ? {} : { bridgeId: this.#options.bridgeId };
    try {
      this.#send({ type: 'answer', sdp, ...node });
      return;
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
    }
    // Over 4 KB (many interfaces, or TURN): send the bare answer, then trickle the candidates (RFC 8838 §9); their
    // end now if the answer had it, else once the peer's gathering completes (trickleLate).
    const { sdp: bare, candidates } = extractCandidates(sdp);
    this.#send({ type: 'answer', sdp: bare, ...node });
    for (const c of candidates) this.#sendCandidate(c);
    if (/^a=end-of-candidates/m.test(sdp)) this.#sendCandidate(null);
  }

  /** One of the bridge's candidates after the answer (§7), or null: the end of them. */
  #sendCandidate(candidate: RemoteCandidate | null): void {
    this.#send(candidateMessage(candidate));
  }

  #send(body: DownMessage): void {
    const seq = this.#seq + 1;
    this.#options.send({ v: PROTOCOL_VERSION, sessionId: this.sessionId, seq, ts: Date.now(), ...body } as Message);
    this.#seq = seq; // only once sent: a message refused as too large does not use up a sequence number
  }

  #onPeerState(state: string): void {
    if (state === 'connected' && this.#state === 'connecting') {
      this.#clock.mark('connected');
      this.#selectedPair = this.#peer?.selectedPair;
      this.#setState('connected');
      this.log.info({ timeline: this.#clock.timeline, selectedPair: this.#selectedPair }, 'session connected');
      this.#lastRtpAt = performance.now();
      this.#watchMedia();
    } else if (state === 'failed') {
      void this.close('ice-failed');
    }
  }

  #onTrack(track: RemoteTrack): void {
    this.#tracks.set(track.ssrc, { ...track, packets: 0, bytes: 0, keyframes: 0, lastKeyframeTs: -1 });
    this.emit('track', track);
    // A keyframe now rather than at the camera's next GOP boundary: the first picture is what users wait for.
    if (track.kind === 'video') this.#peer?.requestKeyframe();
  }

  #onRtp(track: RemoteTrack, packet: RtpPacket): void {
    const stats = this.#tracks.get(track.ssrc);
    if (stats === undefined || this.#state === 'closed') return;
    stats.packets++;
    stats.bytes += packet.payload.length;
    const at = performance.now();
    this.#lastRtpAt = at;
    if (this.#state === 'connected') {
      this.#clock.mark('firstRtp');
      this.#setState('streaming');
    }
    if (
      track.kind === 'video' &&
      stats.lastKeyframeTs !== packet.header.timestamp &&
      startsKeyframe(track.codec as 'VP8' | 'H264', packet.payload)
    ) {
      stats.keyframes++;
      stats.lastKeyframeTs = packet.header.timestamp;
      if (this.#clock.mark('firstKeyframe')) this.log.debug({ timeline: this.#clock.timeline }, 'first keyframe');
      this.emit('keyframe', track);
    }
    this.emit('rtp', track, packet, at);
  }

  /** One timer for the media timeout, re-armed for the remainder instead of reset on every packet. */
  #watchMedia(): void {
    const idle = performance.now() - this.#lastRtpAt;
    const left = this.#options.mediaTimeoutMs - idle;
    if (left <= 0) {
      this.log.warn({ idleMs: Math.round(idle) }, 'no media');
      void this.close('timeout');
      return;
    }
    this.#arm(left, () => this.#watchMedia());
  }

  #arm(ms: number, fn: () => void): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(fn, ms);
  }

  #setState(state: SessionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }
}
