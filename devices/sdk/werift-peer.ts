/**
 * DevicePeer on werift, for simulated cameras and Node devices: a send-only video m-line (VP8 or H264) and an
 * optional send-only audio one. RTP comes from the caller (sendVideoRtp / sendAudioRtp); werift's sender rewrites
 * SSRC and payload type to the negotiated ones. Node only.
 */
import {
  PictureLossIndication,
  RTCPeerConnection,
  RtcpPayloadSpecificFeedback,
  type RTCRtpSender,
  type RtcpPacket,
  type RtpPacket,
} from 'werift';
import type { IceServer, IceTransportPolicy } from '../../src/protocol/index.ts';
import { codecParameters, type AudioCodecName, type VideoCodecName } from '../../src/webrtc/codecs.ts';
import type { DevicePeer, DevicePeerState, IceCandidateInit } from './device-peer.ts';
import { addRemoteCandidateNow, setLocalOffer } from '../../src/webrtc/werift-offerer.ts';

/** PSFB FMT of a Full Intra Request (RFC 5104 §4.3.1.1); werift parses FIR but does not export its class. */
const FIR_FMT = 4;
type FirFeedback = { count: typeof FIR_FMT; fir: { ssrc: number; sequenceNumber: number }[] };

export interface WeriftPeerOptions {
  iceServers: readonly IceServer[];
  /** relay: TURN relay candidates only (default all). */
  iceTransportPolicy?: IceTransportPolicy | undefined;
  video: VideoCodecName;
  /** Omit for a camera without a microphone. */
  audio?: AudioCodecName | undefined;
  /** Inclusive UDP port range for ICE; undefined lets the OS pick. */
  icePortRange?: readonly [number, number] | undefined;
}

export class WeriftPeer implements DevicePeer {
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  onStateChange: ((state: DevicePeerState) => void) | undefined;
  /** Called on each RTCP PLI (RFC 4585 §6.3.1) or FIR (RFC 5104 §4.3.1) for the video stream. */
  onKeyframeRequest: (() => void) | undefined;
  keyframeRequests = 0;
  readonly video: VideoCodecName;
  readonly audio: AudioCodecName | undefined;
  readonly #pc: RTCPeerConnection;
  readonly #videoSender: RTCRtpSender;
  readonly #audioSender: RTCRtpSender | undefined;
  #state: DevicePeerState = 'connecting';
  #closed = false;
  #watched = false;
  /** Sequence number of the last FIR acted on: a repeated one is a retransmission (RFC 5104 §4.3.1.2). */
  #lastFirSeq: number | undefined;

  readonly #iceServers: WeriftPeerOptions['iceServers'];

  constructor(options: WeriftPeerOptions) {
    this.#iceServers = options.iceServers;
    this.video = options.video;
    this.audio = options.audio;
    this.#pc = new RTCPeerConnection({
      // Only the codec this camera sends: the answer then cannot pick one we have no RTP for.
      codecs: { video: [codecParameters(options.video)], audio: options.audio ? [codecParameters(options.audio)] : [] },
      iceServers: options.iceServers.map((server) => ({ ...server })),
      iceTransportPolicy: options.iceTransportPolicy ?? 'all',
      // One ICE/DTLS transport for audio and video (RFC 8843): half the candidates and handshakes.
      bundlePolicy: 'max-bundle',
      icePortRange: options.icePortRange ? [options.icePortRange[0], options.icePortRange[1]] : undefined,
    });
    this.#videoSender = this.#pc.addTransceiver('video', { direction: 'sendonly' }).sender;
    this.#audioSender = options.audio ? this.#pc.addTransceiver('audio', { direction: 'sendonly' }).sender : undefined;

    this.#pc.onIceCandidate.subscribe((candidate) => {
      if (this.#closed) return;
      this.onLocalCandidate?.(candidate?.candidate ? { candidate: candidate.candidate, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex } : null);
    });
    this.#pc.iceGatheringStateChange.subscribe((state) => {
      if (state === 'complete' && !this.#closed) this.onLocalCandidate?.(null);
    });
    this.#pc.connectionStateChange.subscribe((state) => {
      // 'disconnected' is transient (consent freshness may recover, RFC 7675); werift reports 'failed' if it does not.
      if (state === 'connected') this.#setState('connected');
      else if (state === 'failed') this.#setState('failed');
      else if (state === 'closed') this.#setState('closed');
    });
    // werift's router hands a sender the PLIs addressed to it, but never an FIR: FIR names its target only in the
    // FCI (RFC 5104 §4.3.1.2; the media SSRC field is 0) and the router looks at the header SSRCs. Reading the DTLS
    // transport's RTCP ourselves catches both, once each.
    this.#watchRtcp();
  }

  get state(): DevicePeerState {
    return this.#state;
  }

  /** The video sender's SSRC: what a receiver names in PLI and FIR. */
  get videoSsrc(): number {
    return this.#videoSender.ssrc;
  }

  async createOffer(): Promise<string> {
    const sdp = await setLocalOffer(this.#pc, this.#iceServers); // with the host (and STUN) candidates
    this.#watchRtcp(); // in case the transport did not exist yet in the constructor
    return sdp;
  }

  async applyAnswer(sdp: string): Promise<void> {
    await this.#pc.setRemoteDescription({ type: 'answer', sdp });
  }

  addRemoteCandidate(candidate: IceCandidateInit | null): void {
    if (!this.#closed) addRemoteCandidateNow(this.#pc, candidate); // fire and forget: see DevicePeer.addRemoteCandidate
  }

  /** Sends one video RTP packet; dropped (not queued) until DTLS is up. */
  sendVideoRtp(packet: RtpPacket | Buffer): void {
    if (!this.#closed) this.#videoSender.sendRtp(packet).catch(() => {});
  }

  sendAudioRtp(packet: RtpPacket | Buffer): void {
    if (!this.#closed) this.#audioSender?.sendRtp(packet).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onLocalCandidate = undefined;
    this.onKeyframeRequest = undefined;
    await this.#pc.close().catch(() => {});
    this.#state = 'closed';
    this.onStateChange = undefined;
  }

  #watchRtcp(): void {
    const transport = this.#pc.dtlsTransports[0];
    if (this.#watched || transport === undefined) return;
    this.#watched = true;
    transport.onRtcp.subscribe((rtcp) => this.#onRtcp(rtcp));
  }

  #onRtcp(rtcp: RtcpPacket): void {
    if (this.#closed || rtcp.type !== RtcpPayloadSpecificFeedback.type) return;
    const feedback = (rtcp as RtcpPayloadSpecificFeedback).feedback;
    const ssrc = this.#videoSender.ssrc;
    if (feedback.count === PictureLossIndication.count) {
      if ((feedback as PictureLossIndication).mediaSsrc !== ssrc) return;
    } else if (feedback.count === FIR_FMT) {
      const entry = (feedback as unknown as FirFeedback).fir.find((e) => e.ssrc === ssrc);
      if (entry === undefined || entry.sequenceNumber === this.#lastFirSeq) return;
      this.#lastFirSeq = entry.sequenceNumber;
    } else {
      return;
    }
    this.keyframeRequests++;
    this.onKeyframeRequest?.();
  }

  #setState(state: DevicePeerState): void {
    if (this.#closed || this.#state === state) return;
    this.#state = state;
    this.onStateChange?.(state);
  }
}
