/**
 * DevicePeer on the browser's RTCPeerConnection: the page's camera (and microphone) as send-only tracks, the chosen
 * video codec first in the offer (the bridge takes the first codec it supports), trickled candidates. The browser
 * answers PLI/FIR with keyframes by itself.
 */
import type { IceServer } from '../../src/protocol/index.ts';
import type { DevicePeer, DevicePeerState, IceCandidateInit } from '../sdk/device-peer.ts';

export type BrowserVideoCodec = 'VP8' | 'H264';

export class BrowserCameraPeer implements DevicePeer {
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  onStateChange: ((state: DevicePeerState) => void) | undefined;
  readonly pc: RTCPeerConnection;
  #closed = false;

  constructor(media: MediaStream, iceServers: readonly IceServer[], codec: BrowserVideoCodec) {
    this.pc = new RTCPeerConnection({ iceServers: iceServers.map((s) => ({ ...s })), bundlePolicy: 'max-bundle' });
    for (const track of media.getTracks()) {
      const transceiver = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video') preferCodec(transceiver, codec);
    }
    this.pc.onicecandidate = (event) => {
      if (this.#closed) return;
      const c = event.candidate;
      if (c === null || c.candidate === '') this.onLocalCandidate?.(null);
      else this.onLocalCandidate?.({ candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined });
    };
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      if (!this.#closed && (state === 'connected' || state === 'failed' || state === 'closed')) this.onStateChange?.(state);
    };
  }

  async createOffer(): Promise<string> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    const sdp = this.pc.localDescription?.sdp;
    if (sdp === undefined) throw new Error('the browser produced no local description');
    return sdp;
  }

  async applyAnswer(sdp: string): Promise<void> {
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  addRemoteCandidate(candidate: IceCandidateInit | null): void {
    if (this.#closed) return;
    const init = candidate === null ? { candidate: '' } : { ...candidate, sdpMLineIndex: candidate.sdpMLineIndex ?? (candidate.sdpMid === undefined ? 0 : null) };
    this.pc.addIceCandidate(init).catch(() => {});
  }

  /** Closes the connection but not the camera: the page's MediaStream outlives sessions. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onLocalCandidate = undefined;
    this.onStateChange = undefined;
    this.pc.close();
  }
}

/**
 * Puts `codec` first. For H264 only packetization-mode=1 with a baseline profile (42e0/42001f) is what the bridge
 * relays (protocol section 13), so other H264 variants go to the end.
 */
function preferCodec(transceiver: RTCRtpTransceiver, codec: BrowserVideoCodec): void {
  const all = RTCRtpReceiver.getCapabilities('video')?.codecs ?? [];
  const wanted = (c: RTCRtpCodec) =>
    c.mimeType.toLowerCase() === `video/${codec.toLowerCase()}` &&
    (codec !== 'H264' || (/packetization-mode=1/.test(c.sdpFmtpLine ?? '') && /profile-level-id=42(e0|00)1f/.test(c.sdpFmtpLine ?? '')));
  const first = all.filter(wanted);
  if (first.length === 0) return; // this browser cannot send it: leave its own order
  try {
    transceiver.setCodecPreferences([...first, ...all.filter((c) => !wanted(c))]);
  } catch {
    // Older browsers reject some capability lists; their default order still works.
  }
}
