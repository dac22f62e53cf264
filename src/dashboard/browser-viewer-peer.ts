/**
 * ViewerPeer on the browser's RTCPeerConnection: receive-only video and audio, trickled candidates (mDNS `.local`
 * names or raw IPs, whichever the browser hands out), and the incoming media as one MediaStream for a <video>.
 */
import type { IceServer } from '../protocol/index.ts';
import type { IceCandidateInit, ViewerPeer, ViewerPeerState } from '../viewer/viewer-peer.ts';

export class BrowserViewerPeer implements ViewerPeer {
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  onStateChange: ((state: ViewerPeerState) => void) | undefined;
  readonly pc: RTCPeerConnection;
  readonly stream = new MediaStream();
  #closed = false;

  constructor(iceServers: readonly IceServer[]) {
    this.pc = new RTCPeerConnection({ iceServers: iceServers.map((s) => ({ ...s })), bundlePolicy: 'max-bundle' });
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    this.pc.ontrack = (event) => this.stream.addTrack(event.track);
    this.pc.onicecandidate = (event) => {
      if (this.#closed) return;
      const c = event.candidate;
      // A null candidate, or Chromium's empty one, ends gathering (RFC 8838 §4.4).
      if (c === null || c.candidate === '') this.onLocalCandidate?.(null);
      else this.onLocalCandidate?.({ candidate: c.candidate, sdpMid: c.sdpMid ?? undefined, sdpMLineIndex: c.sdpMLineIndex ?? undefined });
    };
    this.pc.onconnectionstatechange = () => {
      // 'disconnected' is transient (consent freshness may recover, RFC 7675); 'failed' follows if it does not.
      const state = this.pc.connectionState;
      if (!this.#closed && (state === 'connected' || state === 'failed' || state === 'closed')) this.onStateChange?.(state);
    };
  }

  /**
   * The first RTCPeerConnection of a page pays for starting the browser's WebRTC stack (network enumeration,
   * certificate, mDNS responder): measured at several hundred ms of the first click. Paying it once after sign-in,
   * on a throwaway connection, keeps it out of "click → first frame".
   */
  static async warmUp(): Promise<void> {
    const pc = new RTCPeerConnection();
    try {
      pc.addTransceiver('video', { direction: 'recvonly' });
      await pc.setLocalDescription(await pc.createOffer());
    } finally {
      pc.close();
    }
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
    this.pc.addIceCandidate(init).catch(() => {}); // never awaited in sequence: see OffererPeer.addRemoteCandidate
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onLocalCandidate = undefined;
    this.onStateChange = undefined;
    this.pc.close();
  }
}
