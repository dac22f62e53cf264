/**
 * The OffererPeer surface (./offerer-peer.ts) on the browser's RTCPeerConnection, shared by the dashboard's viewer
 * (src/player/browser-viewer-peer.ts: receive-only) and the browser camera (devices/browser-camera/browser-peer.ts:
 * send-only). Trickled candidates (mDNS `.local` names or raw IPs, whichever the browser hands out), one bundled
 * transport; a subclass adds its transceivers after super(). Browser only (no node:*, no werift).
 */
import type { IceServer, IceTransportPolicy } from '../protocol/index.ts';
import type { IceCandidateInit, OffererPeer, OffererPeerState } from './offerer-peer.ts';

export class BrowserOffererPeer implements OffererPeer {
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  onStateChange: ((state: OffererPeerState) => void) | undefined;
  readonly pc: RTCPeerConnection;
  #closed = false;

  constructor(iceServers: readonly IceServer[], iceTransportPolicy: IceTransportPolicy = 'all') {
    this.pc = new RTCPeerConnection({ iceServers: iceServers.map((s) => ({ ...s })), iceTransportPolicy, bundlePolicy: 'max-bundle' });
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

  /** Closes the connection only: media the page handed in (a camera's MediaStream) outlives sessions. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.onLocalCandidate = undefined;
    this.onStateChange = undefined;
    this.pc.close();
  }
}
