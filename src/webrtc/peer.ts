/**
 * The one seam to werift's RTCPeerConnection. The answerer (camera sessions) and the relay (viewer sessions) use
 * this small surface; nothing else in src/ imports werift's peer connection.
 */
import { EventEmitter } from 'node:events';
import {
  createSelfSignedCertificate,
  HashAlgorithm,
  NamedCurveAlgorithm,
  RTCPeerConnection,
  RtcpPayloadSpecificFeedback,
  SignatureAlgorithm,
  type DtlsKeys,
  type MediaStreamTrack,
  type RTCRtpSender,
  type RTCRtpTransceiver,
  type RtpPacket,
} from 'werift';
import type { IceServer, IceTransportPolicy } from '../protocol/messages.ts';
import { AUDIO_CODECS, codecNameOf, codecParameters, VIDEO_CODECS, type CodecName } from './codecs.ts';
import { withoutDefaultStun } from './default-stun.ts';
import type { MediaAddresses } from './media-addresses.ts';
import { checkOffer, offeredCodecs, rejectedAll, SdpError } from './sdp.ts';

export interface PeerOptions {
  iceServers: readonly IceServer[];
  /** relay: TURN relay candidates only (needs a TURN server in iceServers); default all. */
  iceTransportPolicy?: IceTransportPolicy | undefined;
  /** Inclusive UDP port range for ICE, e.g. [40000, 40999]; undefined lets the OS pick. */
  portRange?: readonly [number, number] | undefined;
  /** Seconds to wait for STUN answers while gathering (werift default 5); only matters when STUN is configured. */
  stunGatherTimeoutS?: number | undefined;
  /** Codecs this peer may negotiate (default: every codec tali supports). A relay peer offers only its source's. */
  codecs?: { video: readonly CodecName[]; audio: readonly CodecName[] } | undefined;
  /** recvonly (default): a camera session, media comes in. sendonly: a viewer session, media goes out. */
  direction?: 'recvonly' | 'sendonly';
  /** The local addresses ICE binds to (resolveMediaAddresses); undefined: every interface. */
  mediaAddresses?: MediaAddresses | undefined;
  /** Extra addresses announced as host candidates on the same ports (a 1:1 NAT, a container's host). */
  announceAddresses?: readonly string[] | undefined;
  /** Longest wait of answer() for a TURN relay candidate still being allocated (default 1000 ms); see trickleLate. */
  relayWaitMs?: number | undefined;
  /**
   * Each received RTP packet, with its track. A callback, not an event: it runs per packet, and Node's `emit` makes
   * an array of its arguments on every call (garbage per packet for the scavenger, issue 16).
   */
  onRtp?: ((track: RemoteTrack, packet: RtpPacket) => void) | undefined;
}

/** What a sending peer negotiated for one kind of media. */
export interface LocalTrack {
  kind: 'audio' | 'video';
  codec: CodecName;
  clockRate: number;
}

export type PeerState = 'new' | 'connecting' | 'connected' | 'disconnected' | 'failed' | 'closed';

export interface RemoteTrack {
  kind: 'audio' | 'video';
  codec: CodecName;
  ssrc: number;
}

export interface RemoteCandidate {
  candidate: string;
  sdpMid?: string | undefined;
  sdpMLineIndex?: number | undefined;
}

/** The `candidate` message body (docs/protocol.md §5.3) that trickles one of our candidates, or their end (null). */
export function candidateMessage(candidate: RemoteCandidate | null): { type: 'candidate'; candidate?: string; sdpMid?: string; sdpMLineIndex?: number; endOfCandidates?: true } {
  if (candidate === null) return { type: 'candidate', endOfCandidates: true };
  const { sdpMid, sdpMLineIndex } = candidate;
  return { type: 'candidate', candidate: candidate.candidate, ...(sdpMid !== undefined && { sdpMid }), ...(sdpMLineIndex !== undefined && { sdpMLineIndex }) };
}

/** RFC 8445 §5.1.1 candidate types. */
export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';

/** A DTLS certificate with its private key (PEM), as werift takes it. Never logged. */
export type DtlsCertificate = DtlsKeys;

/** The pair ICE selected: whose candidate types, over which transport. */
export interface SelectedPair {
  local: CandidateType;
  remote: CandidateType;
  protocol: 'udp' | 'tcp';
}

export interface PeerEvents {
  state: [PeerState];
  iceConnected: [];
  track: [RemoteTrack];
  candidateError: [candidate: string, error: Error];
  /** The remote receiver asked for a keyframe (RTCP PLI or FIR) on our video. */
  keyframeRequest: [];
}

export class Peer extends EventEmitter<PeerEvents> {
  /** The certificate of this thread's peers (useCertificate); without one werift makes its own with the first peer. */
  static #certificate: DtlsCertificate | undefined;
  readonly #pc: RTCPeerConnection;
  /** Candidates that arrived before the remote description was applied; werift would apply them one by one. */
  #pending: RemoteCandidate[] | undefined = [];
  #closed = false;
  readonly #direction: 'recvonly' | 'sendonly';
  readonly #senders = new Map<'audio' | 'video', RTCRtpSender>();
  readonly #iceServers: readonly IceServer[];
  readonly #relayWaitMs: number;
  /** Ends answer()'s wait for the relay candidate (close() calls it). */
  #stopWaiting: (() => void) | undefined;
  /** After answer() returned early: the candidates it did not carry, then null (end); see trickleLate. */
  #late: (RemoteCandidate | null)[] | undefined;
  #trickle: ((candidate: RemoteCandidate | null) => void) | undefined;
  readonly #onRtp: ((track: RemoteTrack, packet: RtpPacket) => void) | undefined;

  constructor(options: PeerOptions) {
    super();
    this.#relayWaitMs = options.relayWaitMs ?? 1000;
    const codecs = options.codecs ?? { video: VIDEO_CODECS, audio: AUDIO_CODECS };
    this.#direction = options.direction ?? 'recvonly';
    this.#iceServers = options.iceServers;
    this.#onRtp = options.onRtp;
    this.#pc = new RTCPeerConnection({
      ...Peer.#dtls(),
      codecs: { video: codecs.video.map(codecParameters), audio: codecs.audio.map(codecParameters) },
      iceServers: options.iceServers.map((s) => ({ ...s })),
      iceTransportPolicy: options.iceTransportPolicy ?? 'all',
      icePortRange: options.portRange ? [options.portRange[0], options.portRange[1]] : undefined,
      iceStunGatherTimeout: options.stunGatherTimeoutS,
      iceInterfaceAddresses: options.mediaAddresses,
      iceAdditionalHostAddresses: options.announceAddresses?.length ? [...options.announceAddresses] : undefined,
    });
    this.#pc.connectionStateChange.subscribe((state) => this.emit('state', state));
    this.#pc.iceConnectionStateChange.subscribe((state) => {
      if (state === 'connected') this.emit('iceConnected');
    });
    this.#pc.onRemoteTransceiverAdded.subscribe((transceiver) => this.#receive(transceiver));
  }

  /**
   * Pays werift's first-use cost (interface scan, DTLS certificate: ~95 ms here) before the first camera's offer
   * does. Gathering on a throwaway connection, then closing it.
   */
  static async warmUp(): Promise<void> {
    const pc = new RTCPeerConnection({ ...Peer.#dtls(), codecs: { video: VIDEO_CODECS.map(codecParameters) } });
    pc.addTransceiver('video', { direction: 'recvonly' });
    const offer = await pc.createOffer();
    withoutDefaultStun(pc);
    await pc.setLocalDescription(offer);
    await pc.close();
  }

  /**
   * A self-signed DTLS certificate as werift makes one for each thread (ECDSA P-256, SHA-256). The bridge makes one
   * for all its media worker threads (src/media/worker-media.ts): each thread making its own would load werift's
   * certificate generator (@peculiar/x509 and its modules, ~75 ms of CPU; werift loads it with the first certificate
   * only, patches/werift+0.25.2.patch [werift-x509-lazy]).
   */
  static createCertificate(): Promise<DtlsCertificate> {
    return createSelfSignedCertificate({ signature: SignatureAlgorithm.ecdsa_3, hash: HashAlgorithm.sha256_4 }, NamedCurveAlgorithm.secp256r1_23);
  }

  /** The certificate this thread's peers use from now on (werift uses one per thread too: the same fingerprint). */
  static useCertificate(certificate: DtlsCertificate): void {
    Peer.#certificate = certificate;
  }

  static #dtls(): { dtls?: { keys: DtlsCertificate } } {
    return Peer.#certificate === undefined ? {} : { dtls: { keys: Peer.#certificate } };
  }

  /**
   * Picks the codecs to negotiate for an offer: per kind, the first one the offer lists that tali supports. One
   * codec per kind leaves the camera no choice, so whoever relays its media knows the codec from the answer on.
   */
  static chooseCodecs(offerSdp: string): { video: CodecName[]; audio: CodecName[] } {
    const offered = offeredCodecs(offerSdp);
    const pick = (names: string[], supported: readonly CodecName[]): CodecName[] => {
      const found = names.map((n) => supported.find((c) => c.toLowerCase() === n.toLowerCase())).find((c) => c);
      return found ? [found] : [];
    };
    return { video: pick(offered.video, VIDEO_CODECS), audio: pick(offered.audio, AUDIO_CODECS) };
  }

  /**
   * Applies a remote offer and returns the answer SDP: with every host candidate (werift gathers them first), and
   * `a=end-of-candidates` when that is all. With TURN, the relay candidate if it came within relayWaitMs, and no end
   * marker (werift's rewrite at the end of gathering precedes its state `complete`): see trickleLate for the rest.
   */
  async answer(offerSdp: string): Promise<string> {
    checkOffer(offerSdp);
    try {
      // An m=application section (a data channel, which libpeer firmware offers by default) is answered as werift
      // does; its SCTP association no longer holds back `connected` (patches/werift+0.25.2.patch, [werift-sctp-optional]).
      await this.#pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    } catch (err) {
      throw new SdpError('invalid', `offer rejected: ${(err as Error).message}`);
    }
    this.#flushCandidates();
    if (this.#direction === 'sendonly') {
      // werift leaves transceivers created by a remote recvonly offer inactive unless told we will send.
      for (const transceiver of this.#pc.getTransceivers()) transceiver.setDirection('sendonly');
    }
    if (/^a=setup:actpass/m.test(offerSdp)) {
      // RFC 8842 §5.3 lets the answerer pick either DTLS role. werift picks client; as server we leave the first
      // move to the remote (browsers, libwebrtc and GStreamer devices send it at once). Unpatched werift's client
      // waited a fixed 100 ms before its ClientHello (gone with [werift-dtls-hello-now], docs/werift-patches.md).
      for (const transceiver of this.#pc.getTransceivers()) {
        if (transceiver.dtlsTransport?.role === 'auto') transceiver.dtlsTransport.role = 'server';
      }
    }
    const answer = await this.#pc.createAnswer();
    withoutDefaultStun(this.#pc, this.#iceServers);
    this.#watchLate();
    await this.#pc.setLocalDescription(answer);
    await this.#gathered(this.#relayWaitMs);
    const sdp = this.#pc.localDescription?.sdp ?? ''; // werift rewrites it with every candidate once gathering completes
    const complete = /^a=end-of-candidates/m.test(sdp);
    this.#late = complete ? [] : (this.#late ?? []).filter((c) => c === null || !sdp.includes(`a=${c.candidate}\r\n`));
    if (rejectedAll(sdp)) throw new SdpError('no-common-codec', `offer has no ${[...VIDEO_CODECS, ...AUDIO_CODECS].join('/')} media`);
    this.#watchSenders();
    return sdp;
  }

  /**
   * Hands over what the answer did not carry, once the caller has sent it: werift allocates the TURN relay candidate
   * after the host ones ([werift-turn-trickle], docs/werift-patches.md) and answer() waits for it at most
   * relayWaitMs, so from a slow or unreachable TURN server it comes later, or never. `send` gets each candidate
   * gathered after the answer, then null when gathering is complete (RFC 8838 §4.1: trickled, ended once); nothing
   * when the answer was complete.
   */
  trickleLate(send: (candidate: RemoteCandidate | null) => void): void {
    if (this.#closed || this.#late === undefined || this.#trickle !== undefined) return;
    this.#trickle = send;
    for (const candidate of this.#late.splice(0)) send(candidate);
  }

  /**
   * What the remote will send us, once answered: per kind, the first codec of our answer, which is the one a
   * sender uses (RFC 3264 §6.1: the answerer's order is its preference). Lets a relay answer viewers before the
   * first packet.
   */
  get receiveCodecs(): { kind: 'audio' | 'video'; codec: CodecName }[] {
    return this.#pc.getTransceivers().flatMap((transceiver) => {
      const direction = transceiver.currentDirection ?? transceiver.direction;
      const codec = transceiver.codecs[0] && codecNameOf(transceiver.codecs[0].mimeType);
      return (direction === 'recvonly' || direction === 'sendrecv') && codec ? [{ kind: transceiver.kind as 'audio' | 'video', codec }] : [];
    });
  }

  /** What this peer sends, once answered: one entry per kind the remote wants to receive. */
  get localTracks(): LocalTrack[] {
    return [...this.#senders.values()].flatMap((sender) => {
      const codec = sender.codec && codecNameOf(sender.codec.mimeType);
      return codec && sender.codec ? [{ kind: sender.kind as 'audio' | 'video', codec, clockRate: sender.codec.clockRate }] : [];
    });
  }

  /** Sends one RTP packet on our track of that kind (werift sets SSRC, payload type and the continuity offsets). */
  send(kind: 'audio' | 'video', packet: RtpPacket): void {
    this.#senders.get(kind)?.sendRtp(packet).catch(() => {});
  }

  /**
   * The packets that follow come from another source (the camera re-offered): keep sequence numbers continuous and
   * advance the timestamp by `timestampStep` clock ticks, so the receiver's jitter buffer sees one stream.
   */
  sourceChanged(kind: 'audio' | 'video', timestampStep: number): void {
    this.#senders.get(kind)?.replaceRTP({ sequenceNumber: 0, timestamp: 0 }, true, Math.max(1, Math.round(timestampStep)));
  }

  /**
   * Adds a trickled candidate. Never waits: werift's addIceCandidate blocks ~10 s on an mDNS name it cannot resolve,
   * and one such candidate must not hold back the others.
   *
   * There is no end-of-candidates here on purpose: callers drop it. werift declares ICE failed as soon as the remote has ended its
   * candidates and every pair it could form has failed, even while the remote's own checks, which make working
   * peer-reflexive pairs, are on their way: seen ~80 ms after the answer with a browser's mDNS-only candidates, and
   * under load with werift cameras. Consent and the session's connect timeout still end what never connects.
   */
  addRemoteCandidate(candidate: RemoteCandidate): void {
    if (this.#closed) return;
    if (this.#pending) {
      this.#pending.push(candidate);
      return;
    }
    const init = { sdpMLineIndex: candidate.sdpMid === undefined ? 0 : undefined, ...candidate };
    this.#pc.addIceCandidate(init).catch((err: Error) => {
      if (!this.#closed) this.emit('candidateError', candidate.candidate, err);
    });
  }

  /**
   * The candidate pair ICE nominated, once connected. A remote candidate werift learnt from a check before its
   * trickled candidate arrived is peer-reflexive (RFC 8445 §7.3.1.3); the trickled one at the same address says what
   * it really is (a TURN relay, typically).
   */
  get selectedPair(): SelectedPair | undefined {
    const connection = this.#pc.iceTransports[0]?.connection;
    const pair = connection?.nominated;
    if (connection === undefined || pair === undefined) return undefined;
    const remote = pair.remoteCandidate;
    const signalled =
      remote.type === 'prflx'
        ? connection.remoteCandidates.find((c) => c.type !== 'prflx' && c.host === remote.host && c.port === remote.port)
        : undefined;
    return {
      local: pair.localCandidate.type as CandidateType,
      remote: (signalled ?? remote).type as CandidateType,
      protocol: pair.localCandidate.transport.toLowerCase() === 'tcp' ? 'tcp' : 'udp',
    };
  }

  /** Asks every video sender for a keyframe (RTCP PLI, RFC 4585 §6.3.1). */
  requestKeyframe(): void {
    for (const transceiver of this.#pc.getTransceivers()) {
      if (transceiver.kind !== 'video') continue;
      for (const track of transceiver.receiver.tracks) {
        if (track.ssrc !== undefined) transceiver.receiver.sendRtcpPLI(track.ssrc).catch(() => {});
      }
    }
  }

  /** Releases the ICE and DTLS sockets. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = undefined;
    this.#stopWaiting?.();
    this.#trickle = undefined;
    await this.#pc.close().catch(() => {});
    this.emit('state', 'closed');
    this.removeAllListeners();
  }

  /** After answering: the senders of transceivers that send, and keyframe requests arriving on video ones. */
  #watchSenders(): void {
    for (const transceiver of this.#pc.getTransceivers()) {
      const direction = transceiver.currentDirection ?? transceiver.direction;
      if (direction !== 'sendonly' && direction !== 'sendrecv') continue;
      const kind = transceiver.kind as 'audio' | 'video';
      if (this.#senders.has(kind)) continue;
      this.#senders.set(kind, transceiver.sender);
      if (kind !== 'video') continue;
      // PLI (PSFB FMT 1, RFC 4585 §6.3.1) or FIR (FMT 4, RFC 5104 §4.3.1) for our video. werift routes PSFB by the
      // requester's SSRC first, and a werift viewer announces that SSRC in its SDP, so the request can land on our
      // receiver of that transceiver instead of the sender: listen on both, match on the media source.
      const sender = transceiver.sender;
      const onRtcp = (rtcp: { type: number }) => {
        if (rtcp.type !== RtcpPayloadSpecificFeedback.type) return;
        const feedback = (rtcp as RtcpPayloadSpecificFeedback).feedback as { count: number; mediaSsrc?: number };
        if (feedback.count === 1 && feedback.mediaSsrc !== sender.ssrc) return;
        if (feedback.count === 1 || feedback.count === 4) this.emit('keyframeRequest');
      };
      sender.onRtcp.subscribe(onRtcp);
      transceiver.receiver.onRtcp.subscribe(onRtcp);
    }
  }

  /**
   * Local candidates werift reports after setLocalDescription's SDP was made (a relay one), and its end: kept for
   * trickleLate until the caller sent the answer, passed on after.
   */
  #watchLate(): void {
    const late = (candidate: RemoteCandidate | null) => {
      if (this.#closed) return;
      if (this.#trickle) this.#trickle(candidate);
      else (this.#late ??= []).push(candidate);
    };
    this.#pc.onIceCandidate.subscribe((candidate) => {
      if (candidate?.candidate) late({ candidate: candidate.candidate.replace(/^a=/, ''), sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex });
    });
    this.#pc.iceGatheringStateChange.subscribe((state) => state === 'complete' && late(null));
  }

  /** Resolves once werift's gathering is complete, after `ms` at most, or at close(). */
  async #gathered(ms: number): Promise<void> {
    if (this.#pc.iceGatheringState === 'complete' || this.#closed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.#stopWaiting?.(), ms);
      const { unSubscribe } = this.#pc.iceGatheringStateChange.subscribe((state) => state === 'complete' && this.#stopWaiting?.());
      this.#stopWaiting = () => {
        clearTimeout(timer);
        unSubscribe();
        this.#stopWaiting = undefined;
        resolve();
      };
    });
  }

  #flushCandidates(): void {
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    for (const candidate of pending) this.addRemoteCandidate(candidate);
  }

  #receive(transceiver: RTCRtpTransceiver): void {
    transceiver.onTrack.subscribe((track: MediaStreamTrack) => {
      const codec = codecNameOf(track.codec?.mimeType ?? '');
      if (codec === undefined || track.ssrc === undefined) return;
      const remote: RemoteTrack = { kind: track.kind as 'audio' | 'video', codec, ssrc: track.ssrc };
      this.emit('track', remote);
      const onRtp = this.#onRtp;
      if (onRtp !== undefined) track.onReceiveRtp.subscribe((packet) => onRtp(remote, packet));
    });
  }
}
