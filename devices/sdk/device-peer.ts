/**
 * What SessionKeeper needs from a WebRTC stack, and nothing more, so the same keeper drives werift in Node
 * (./werift-peer.ts), RTCPeerConnection in a browser page (devices/browser-camera), or a firmware binding. It is the
 * offerer surface the viewer SDK uses too (src/client/offerer-peer.ts), with a send-only peer behind it.
 */
import type { OffererPeer, OffererPeerState } from '../../src/client/offerer-peer.ts';
import type { IceServer } from '../../src/protocol/index.ts';

export type { IceCandidateInit } from '../../src/client/offerer-peer.ts';
export type DevicePeerState = OffererPeerState;

export interface DevicePeer extends OffererPeer {}

/** Makes a fresh peer for each session, with the ICE servers from the bridge card. */
export type DevicePeerFactory = (iceServers: readonly IceServer[]) => DevicePeer;
