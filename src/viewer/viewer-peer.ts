/**
 * What the viewer SDK needs from a WebRTC stack: the offerer surface of src/client/offerer-peer.ts with a receive-only
 * peer behind it (video and, if wanted, audio). The dashboard wraps RTCPeerConnection (src/player/browser-viewer-peer.ts),
 * `tali watch` wraps werift (src/webrtc/werift-viewer-peer.ts). Browser-safe.
 */
import type { OffererPeer, OffererPeerState } from '../client/offerer-peer.ts';
import type { IceServer, IceTransportPolicy } from '../protocol/index.ts';

export type { IceCandidateInit } from '../client/offerer-peer.ts';
export type ViewerPeerState = OffererPeerState;

/** A receive-only peer; what it does with the media (a <video>, counters) is the application's business. */
export interface ViewerPeer extends OffererPeer {}

/**
 * Makes a fresh peer for each watch attempt, with the ICE servers of the bridge card and the viewer's own (TURN
 * credentials from its token or its last `ice-servers`), and the transport policy (`relay`: TURN relay candidates only).
 */
export type ViewerPeerFactory = (iceServers: readonly IceServer[], options: { iceTransportPolicy: IceTransportPolicy }) => ViewerPeer;
