/**
 * What SessionKeeper needs from a WebRTC stack, and nothing more, so the same keeper drives werift in Node
 * (./werift-peer.ts), RTCPeerConnection in a browser page, or a firmware binding.
 */
import type { IceServer } from '../../src/protocol/index.ts';

export type DevicePeerState = 'connecting' | 'connected' | 'failed' | 'closed';

/** An ICE candidate as carried by the protocol's `candidate` message (RFC 8839 §5.1 attribute value). */
export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | undefined;
  sdpMLineIndex?: number | undefined;
}

export interface DevicePeer {
  /**
   * Creates the offer, sets it as the local description and returns its SDP. A stack that gathers before returning
   * (werift) includes its host candidates here; SessionKeeper does not trickle those again.
   */
  createOffer(): Promise<string>;
  /** Sets the bridge's answer as the remote description. */
  applyAnswer(sdp: string): Promise<void>;
  /**
   * Adds a bridge candidate; null means end of candidates (RFC 8838 §4.4). Must return at once: resolving an mDNS
   * candidate can take ~10 s, and one such candidate must not hold back the others.
   */
  addRemoteCandidate(candidate: IceCandidateInit | null): void;
  /** Set by SessionKeeper before createOffer(); called for each local candidate, then with null when gathering ends. */
  onLocalCandidate: ((candidate: IceCandidateInit | null) => void) | undefined;
  /** Set by SessionKeeper before createOffer(). */
  onStateChange: ((state: DevicePeerState) => void) | undefined;
  /** Releases sockets and timers. Idempotent; no callback runs after it resolves. */
  close(): Promise<void>;
}

/** Makes a fresh peer for each session, with the ICE servers from the bridge card. */
export type DevicePeerFactory = (iceServers: readonly IceServer[]) => DevicePeer;
