/**
 * What the two werift offerers do the same way: the device SDK's WeriftPeer (devices/sdk/werift-peer.ts, send-only)
 * and the Node viewer's WeriftViewerPeer (./werift-viewer-peer.ts, receive-only). Each keeps its own
 * RTCPeerConnection, transceivers, callbacks and state; these are the offer and the remote candidates. Node only.
 */
import type { RTCPeerConnection } from 'werift';
import type { IceServer } from '../protocol/messages.ts';
import { withoutDefaultStun } from './default-stun.ts';
import type { RemoteCandidate } from './peer.ts';
import type { IceCandidateInit } from '../client/offerer-peer.ts';

/**
 * Creates the offer and sets it as the local description (without werift's default STUN server unless `iceServers`
 * has one), returning its SDP. werift resolves once host (and STUN) candidates are gathered, so they are in it; a
 * TURN relay candidate comes later ([werift-turn-trickle], docs/werift-patches.md), as an `onIceCandidate` event,
 * and `iceGatheringState` goes `complete` only after it (or after the allocation failed).
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
 * What werift gathers once the offer is made (see setLocalOffer): candidates the offer SDP does not carry (a TURN
 * relay's), then null when gathering is complete, now if it already is. `sdp` is the offer setLocalOffer returned.
 */
export function trickleAfterOffer(pc: RTCPeerConnection, sdp: string, emit: (candidate: IceCandidateInit | null) => void): void {
  pc.onIceCandidate.subscribe((candidate) => {
    const line = candidate?.candidate;
    if (line && !sdp.includes(`a=${line.replace(/^a=/, '')}\r\n`)) emit({ candidate: line, sdpMid: candidate.sdpMid, sdpMLineIndex: candidate.sdpMLineIndex });
  });
  if (pc.iceGatheringState === 'complete') queueMicrotask(() => emit(null));
  else pc.iceGatheringStateChange.subscribe((state) => state === 'complete' && emit(null));
}

/**
 * Adds a bridge candidate (null: end of candidates) without waiting: see OffererPeer.addRemoteCandidate. One without
 * sdpMid or sdpMLineIndex goes to the first m-line, which every other one shares (max-bundle).
 */
export function addRemoteCandidateNow(pc: RTCPeerConnection, candidate: RemoteCandidate | null): void {
  const init = candidate === null ? null : { ...candidate, sdpMLineIndex: candidate.sdpMLineIndex ?? (candidate.sdpMid === undefined ? 0 : undefined) };
  pc.addIceCandidate(init).catch(() => {});
}
