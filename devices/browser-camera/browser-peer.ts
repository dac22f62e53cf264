/**
 * DevicePeer on the browser's RTCPeerConnection: the page's camera (and microphone) as send-only tracks, the chosen
 * video codec first in the offer (the bridge takes the first codec it supports), trickled candidates. The browser
 * answers PLI/FIR with keyframes by itself. The offerer part (candidates, states, offer/answer, close) is
 * src/client/browser-offerer-peer.ts, shared with the dashboard's viewer.
 */
import { BrowserOffererPeer } from '../../src/client/browser-offerer-peer.ts';
import type { IceServer, IceTransportPolicy } from '../../src/protocol/index.ts';
import type { DevicePeer } from '../sdk/device-peer.ts';

export type BrowserVideoCodec = 'VP8' | 'H264';

/** close() closes the connection but not the camera: the page's MediaStream outlives sessions. */
export class BrowserCameraPeer extends BrowserOffererPeer implements DevicePeer {
  constructor(media: MediaStream, iceServers: readonly IceServer[], codec: BrowserVideoCodec, iceTransportPolicy: IceTransportPolicy = 'all') {
    super(iceServers, iceTransportPolicy);
    for (const track of media.getTracks()) {
      const transceiver = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
      if (track.kind === 'video') preferCodec(transceiver, codec);
    }
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
