/**
 * ViewerPeer on the browser's RTCPeerConnection: receive-only video and audio, trickled candidates (mDNS `.local`
 * names or raw IPs, whichever the browser hands out), and the incoming media as one MediaStream for a <video>. The
 * offerer part (candidates, states, offer/answer, close) is src/client/browser-offerer-peer.ts, shared with the
 * browser camera.
 */
import { BrowserOffererPeer } from '../client/browser-offerer-peer.ts';
import type { IceServer, IceTransportPolicy } from '../protocol/index.ts';
import type { ViewerPeer } from '../viewer/viewer-peer.ts';

export class BrowserViewerPeer extends BrowserOffererPeer implements ViewerPeer {
  readonly stream = new MediaStream();

  constructor(iceServers: readonly IceServer[], iceTransportPolicy: IceTransportPolicy = 'all') {
    super(iceServers, iceTransportPolicy);
    this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.pc.addTransceiver('audio', { direction: 'recvonly' });
    this.pc.ontrack = (event) => this.stream.addTrack(event.track);
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
}
