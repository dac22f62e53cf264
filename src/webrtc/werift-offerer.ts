/**
 * What the two werift offerers do the same way: the device SDK's WeriftPeer (devices/sdk/werift-peer.ts, send-only)
 * and the Node viewer's WeriftViewerPeer (./werift-viewer-peer.ts, receive-only). Each keeps its own
 * RTCPeerConnection, transceivers, callbacks and state; these are the offer and the remote candidates. Node only.
 */
import type { RTCPeerConnection } from 'werift';
import type { IceServer } from '../protocol/messages.ts';
import { withoutDefaultStun } from './default-stun.ts';
import type { RemoteCandidate } from './peer.ts';

/**
 * Creates the offer and sets it as the local description (without werift's default STUN server unless `iceServers`
 * has one), returning its SDP. werift resolves once host (and STUN) candidates are gathered, so they are in it.
 */
export async function setLocalOffer(pc: RTCPeerConnection, iceServers: readonly IceServer[]): Promise<string> {
  const offer = await pc.createOffer();
  withoutDefaultStun(pc, iceServers);
  await pc.setLocalDescription(offer);
  const sdp = pc.localDescription?.sdp;
  if (sdp === undefined) throw new Error('werift produced no local description');
  return sdp;
}

/**
 * Adds a bridge candidate (null: end of candidates) without waiting: see OffererPeer.addRemoteCandidate. One without
 * sdpMid or sdpMLineIndex goes to the first m-line, which every other one shares (max-bundle).
 */
export function addRemoteCandidateNow(pc: RTCPeerConnection, candidate: RemoteCandidate | null): void {
  const init = candidate === null ? null : { ...candidate, sdpMLineIndex: candidate.sdpMLineIndex ?? (candidate.sdpMid === undefined ? 0 : undefined) };
  pc.addIceCandidate(init).catch(() => {});
}
