/**
 * The one seam to werift's RTCPeerConnection. The answerer (camera sessions) and the relay (viewer sessions) use
 * this small surface; nothing else in src/ imports werift's peer connection.
 */
import { EventEmitter } from 'node:events';
import { RTCPeerConnection, type RtpPacket, type RTCRtpTransceiver, type MediaStreamTrack } from 'werift';
import type { IceServer } from '../protocol/messages.ts';
import { AUDIO_CODECS, codecNameOf, codecParameters, VIDEO_CODECS, type CodecName } from './codecs.ts';
import { checkOffer, rejectedAll, SdpError } from './sdp.ts';

export interface PeerOptions {
  iceServers: readonly IceServer[];
  /** Inclusive UDP port range for ICE, e.g. [40000, 40999]; undefined lets the OS pick. */
  portRange?: readonly [number, number] | undefined;
  /** Seconds to wait for STUN answers while gathering (werift default 5); only matters when STUN is configured. */
  stunGatherTimeoutS?: number | undefined;
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

export interface PeerEvents {
  state: [PeerState];
  iceConnected: [];
  track: [RemoteTrack];
  rtp: [RemoteTrack, RtpPacket];
  candidateError: [candidate: string, error: Error];
}

export class Peer extends EventEmitter<PeerEvents> {
  readonly #pc: RTCPeerConnection;
  /** Candidates that arrived before the remote description was applied; werift would apply them one by one. */
  #pending: (RemoteCandidate | null)[] | undefined = [];
  #closed = false;

  constructor(options: PeerOptions) {
    super();
    this.#pc = new RTCPeerConnection({
      codecs: { video: VIDEO_CODECS.map(codecParameters), audio: AUDIO_CODECS.map(codecParameters) },
      iceServers: options.iceServers.map((s) => ({ ...s })),
      icePortRange: options.portRange ? [options.portRange[0], options.portRange[1]] : undefined,
      iceStunGatherTimeout: options.stunGatherTimeoutS,
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
    const pc = new RTCPeerConnection({ codecs: { video: VIDEO_CODECS.map(codecParameters) } });
    pc.addTransceiver('video', { direction: 'recvonly' });
    await pc.setLocalDescription(await pc.createOffer());
    await pc.close();
  }

  /** Applies a remote offer and returns the answer SDP (with every host candidate, since werift gathers first). */
  async answer(offerSdp: string): Promise<string> {
    checkOffer(offerSdp);
    try {
      await this.#pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    } catch (err) {
      throw new SdpError('invalid', `offer rejected: ${(err as Error).message}`);
    }
    this.#flushCandidates();
    const answer = await this.#pc.createAnswer();
    await this.#pc.setLocalDescription(answer);
    const sdp = this.#pc.localDescription?.sdp ?? '';
    if (rejectedAll(sdp)) throw new SdpError('no-common-codec', `offer has no ${[...VIDEO_CODECS, ...AUDIO_CODECS].join('/')} media`);
    return sdp;
  }

  /**
   * Adds a trickled candidate (null: end of candidates). Never waits: werift's addIceCandidate blocks ~10 s on an
   * mDNS name it cannot resolve, and one such candidate must not hold back the others.
   */
  addRemoteCandidate(candidate: RemoteCandidate | null): void {
    if (this.#closed) return;
    if (this.#pending) {
      this.#pending.push(candidate);
      return;
    }
    const init = candidate === null ? null : { sdpMLineIndex: candidate.sdpMid === undefined ? 0 : undefined, ...candidate };
    this.#pc.addIceCandidate(init).catch((err: Error) => {
      if (!this.#closed) this.emit('candidateError', candidate?.candidate ?? 'end-of-candidates', err);
    });
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
    await this.#pc.close().catch(() => {});
    this.emit('state', 'closed');
    this.removeAllListeners();
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
      track.onReceiveRtp.subscribe((packet) => this.emit('rtp', remote, packet));
    });
  }
}
