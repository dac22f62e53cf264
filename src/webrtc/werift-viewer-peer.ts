/**
 * ViewerPeer on werift, for Node viewers (`tali watch`, tests): a receive-only offer for video and audio in every
 * codec tali relays, and counters of what arrives. werift gathers host candidates before setLocalDescription
 * resolves, so the offer carries them; a TURN relay candidate (which werift does not wait for) and the end of
 * candidates are trickled.
 */
import { RTCPeerConnection, type RTCRtpTransceiver } from 'werift';
import type { IceServer, IceTransportPolicy } from '../protocol/messages.ts';
import type { IceCandidateInit, ViewerPeer, ViewerPeerState } from '../viewer/viewer-peer.ts';
import { AUDIO_CODECS, codecNameOf, codecParameters, VIDEO_CODECS, type CodecName } from './codecs.ts';
import { startsKeyframe, type VideoCodec } from './keyframe.ts';
import { addRemoteCandidateNow, setLocalOffer, trickleAfterOffer } from './werift-offerer.ts';

export interface ReceivedTrack {
  kind: 'audio' | 'video';
  codec: CodecName;
  packets: number;
  /** RTP payload bytes. */
  bytes: number;
  /** Video keyframes (counted once per RTP timestamp: an H264 IDR may start with SPS, PPS and several slices). */
  keyframes: number;
}

export interface WeriftViewerPeerOptions {
  iceServers: readonly IceServer[];
  /** relay: TURN relay candidates only (default all). */
  iceTransportPolicy?: IceTransportPolicy | undefined;
  /** Offer audio too (default true). */
  audio?: boolean | undefined;
  icePortRange?: readonly [number, number] | undefined;
}

export class WeriftViewerPeer implements ViewerPeer {
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  onStateChange: ((state: ViewerPeerState) => void) | undefined;
  /** Called once, at the first RTP packet of any kind and at the first video keyframe. */
  onFirstRtp: (() => void) | undefined;
  onFirstKeyframe: (() => void) | undefined;
  /** Called at every video keyframe (tali check-device times keyframe requests with it). */
  onKeyframe: (() => void) | undefined;
  readonly tracks = new Map<'audio' | 'video', ReceivedTrack>();
  readonly #pc: RTCPeerConnection;
  readonly #video: RTCRtpTransceiver;
  /** The video track's SSRC, once media arrived: what a keyframe request names. */
  #videoSsrc: number | undefined;
  #state: ViewerPeerState = 'connecting';
  #closed = false;
  #gotRtp = false;
  #gotKeyframe = false;

  readonly #iceServers: WeriftViewerPeerOptions['iceServers'];

  constructor(options: WeriftViewerPeerOptions) {
    const audio = options.audio ?? true;
    this.#iceServers = options.iceServers;
    this.#pc = new RTCPeerConnection({
      codecs: { video: VIDEO_CODECS.map(codecParameters), audio: audio ? AUDIO_CODECS.map(codecParameters) : [] },
      iceServers: options.iceServers.map((server) => ({ ...server })),
      iceTransportPolicy: options.iceTransportPolicy ?? 'all',
      bundlePolicy: 'max-bundle',
      icePortRange: options.icePortRange ? [options.icePortRange[0], options.icePortRange[1]] : undefined,
    });
    this.#video = this.#pc.addTransceiver('video', { direction: 'recvonly' });
    if (audio) this.#pc.addTransceiver('audio', { direction: 'recvonly' });
    this.#pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected' || state === 'failed' || state === 'closed') this.#setState(state);
    });
    this.#pc.onTrack.subscribe((track) => {
      const codec = codecNameOf(track.codec?.mimeType ?? '');
      const kind = track.kind as 'audio' | 'video';
      if (codec === undefined) return;
      const counters: ReceivedTrack = { kind, codec, packets: 0, bytes: 0, keyframes: 0 };
      this.tracks.set(kind, counters);
      let lastKeyframeTs: number | undefined;
      track.onReceiveRtp.subscribe((packet) => {
        counters.packets++;
        counters.bytes += packet.payload.length;
        if (!this.#gotRtp) {
          this.#gotRtp = true;
          this.onFirstRtp?.();
        }
        if (kind === 'video') this.#videoSsrc = packet.header.ssrc;
        if (kind !== 'video' || !startsKeyframe(codec as VideoCodec, packet.payload)) return;
        if (packet.header.timestamp === lastKeyframeTs) return;
        lastKeyframeTs = packet.header.timestamp;
        counters.keyframes++;
        this.onKeyframe?.();
        if (!this.#gotKeyframe) {
          this.#gotKeyframe = true;
          this.onFirstKeyframe?.();
        }
      });
    });
  }

  get state(): ViewerPeerState {
    return this.#state;
  }

  async createOffer(): Promise<string> {
    const sdp = await setLocalOffer(this.#pc, this.#iceServers);
    trickleAfterOffer(this.#pc, sdp, (candidate) => {
      if (!this.#closed) this.onLocalCandidate?.(candidate);
    });
    return sdp;
  }

  async applyAnswer(sdp: string): Promise<void> {
    await this.#pc.setRemoteDescription({ type: 'answer', sdp });
  }

  addRemoteCandidate(candidate: IceCandidateInit | null): void {
    if (!this.#closed) addRemoteCandidateNow(this.#pc, candidate); // fire and forget: see OffererPeer.addRemoteCandidate
  }

  /** Asks the sender for a keyframe: RTCP PLI (RFC 4585 §6.3.1) for the video stream. False before video arrived. */
  requestKeyframe(): boolean {
    if (this.#closed || this.#videoSsrc === undefined) return false;
    this.#video.receiver.sendRtcpPLI(this.#videoSsrc).catch(() => {});
    return true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onLocalCandidate = undefined;
    this.onFirstRtp = undefined;
    this.onFirstKeyframe = undefined;
    this.onKeyframe = undefined;
    await this.#pc.close().catch(() => {});
    this.#state = 'closed';
    this.onStateChange = undefined;
  }

  #setState(state: ViewerPeerState): void {
    if (this.#closed || this.#state === state) return;
    this.#state = state;
    this.onStateChange?.(state);
  }
}
