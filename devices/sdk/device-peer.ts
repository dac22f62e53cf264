/**
 * What SessionKeeper needs from a WebRTC stack, and nothing more, so the same keeper drives werift in Node
 * (./werift-peer.ts), RTCPeerConnection in a browser page (devices/browser-camera), or a firmware binding. It is the
 * offerer surface the viewer SDK uses too (src/client/offerer-peer.ts), with a send-only peer behind it.
 */
import type { OffererPeer, OffererPeerState } from '../../src/client/offerer-peer.ts';
import type { IceServer, IceTransportPolicy } from '../../src/protocol/index.ts';

export type { IceCandidateInit } from '../../src/client/offerer-peer.ts';
export type DevicePeerState = OffererPeerState;

export interface DevicePeer extends OffererPeer {}

/**
 * Makes a fresh peer for each session, with the ICE servers of the bridge card and the device's own (TURN credentials
 * from `ice-servers`), and the transport policy to create it with (`relay`: TURN relay candidates only).
 */
export type DevicePeerFactory = (iceServers: readonly IceServer[], options: { iceTransportPolicy: IceTransportPolicy }) => DevicePeer;
