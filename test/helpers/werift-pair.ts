/**
 * Two bare werift peers connected on loopback, the offerer sending one video track to the answerer, with the header
 * extensions tali's peers negotiate (mid, abs-send-time, transport-cc): for tests of tali's werift patch that look at
 * werift itself, below tali's Peer. Both are closed when the test finishes.
 */
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, useAbsSendTime, useSdesMid, useTransportWideCC, type RTCRtpSender } from 'werift';
import { onTestFinished } from 'vitest';

export async function connectWeriftPair(codecs: () => RTCRtpCodecParameters[]): Promise<{ sender: RTCRtpSender; remote: MediaStreamTrack }> {
  const headerExtensions = { video: [useSdesMid(), useAbsSendTime(), useTransportWideCC()] };
  const offerer = new RTCPeerConnection({ codecs: { video: codecs() }, headerExtensions });
  const answerer = new RTCPeerConnection({ codecs: { video: codecs() }, headerExtensions });
  onTestFinished(async () => void (await Promise.all([offerer.close(), answerer.close()])));
  const sender = offerer.addTransceiver('video', { direction: 'sendonly' }).sender;
  const track = new Promise<MediaStreamTrack>((resolve) => answerer.onTrack.subscribe(resolve));
  offerer.onIceCandidate.subscribe((c) => c && void answerer.addIceCandidate(c));
  answerer.onIceCandidate.subscribe((c) => c && void offerer.addIceCandidate(c));
  await offerer.setLocalDescription(await offerer.createOffer());
  await answerer.setRemoteDescription(offerer.localDescription!);
  await answerer.setLocalDescription(await answerer.createAnswer());
  await offerer.setRemoteDescription(answerer.localDescription!);
  const connected = (pc: RTCPeerConnection) =>
    new Promise<void>((resolve) => (pc.connectionState === 'connected' ? resolve() : pc.connectionStateChange.subscribe((s) => s === 'connected' && resolve())));
  await Promise.all([connected(offerer), connected(answerer)]);
  return { sender, remote: await track };
}
