/**
 * What the client SDKs need from a WebRTC stack, and nothing more. In tali the client always offers: a camera
 * (send-only, devices/sdk's DevicePeer) and a viewer (receive-only, src/viewer's ViewerPeer) drive the same surface, so
 * one RTCPeerConnection wrapper pattern, werift binding or firmware binding serves either. Browser-safe.
 */

export type OffererPeerState = 'connecting' | 'connected' | 'failed' | 'closed';

/** An ICE candidate as carried by the protocol's `candidate` message (RFC 8839 §5.1 attribute value). */
export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | undefined;
  sdpMLineIndex?: number | undefined;
}

export interface OffererPeer {
  /**
   * Creates the offer, sets it as the local description and returns its SDP. A stack that gathers before returning
   * (werift) includes its host candidates here; the SDKs do not trickle those again.
   */
  createOffer(): Promise<string>;
  /** Sets the bridge's answer as the remote description. */
  applyAnswer(sdp: string): Promise<void>;
  /**
   * Adds a bridge candidate; null means end of candidates (RFC 8838 §4.4). Must return at once: resolving an mDNS
   * candidate can take ~10 s, and one such candidate must not hold back the others.
   */
  addRemoteCandidate(candidate: IceCandidateInit | null): void;
  /** Set by the SDK before createOffer(); called for each local candidate, then with null when gathering ends. */
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  /** Set by the SDK before createOffer(). */
  onStateChange: ((state: OffererPeerState) => void) | undefined;
  /** Releases sockets and timers. Idempotent; no callback runs after it resolves. */
  close(): Promise<void>;
}
