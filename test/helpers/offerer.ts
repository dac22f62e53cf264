/**
 * A real werift peer on the camera side, for tests that drive signaling by hand.
 */
import { RTCPeerConnection, RtpHeader, RtpPacket, type RTCRtpTransceiver } from 'werift';
import { onTestFinished } from 'vitest';
import { codecParameters, type CodecName } from '../../src/webrtc/codecs.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';

export interface Offerer {
  pc: RTCPeerConnection;
  video: RTCRtpTransceiver;
  sdp: string;
  /** Sends one small RTP packet on the video track (enough to count as media). */
  sendVideoPacket(seq: number): void;
}

export async function createOfferer(codecs: { video?: CodecName; audio?: CodecName } = { video: 'VP8' }): Promise<Offerer> {
  const pc = new RTCPeerConnection({
    codecs: {
      video: codecs.video ? [codecParameters(codecs.video)] : [],
      audio: codecs.audio ? [codecParameters(codecs.audio)] : [],
    },
  });
  onTestFinished(() => pc.close());
  const video = pc.addTransceiver('video', { direction: 'sendonly' });
  if (codecs.audio) pc.addTransceiver('audio', { direction: 'sendonly' });
  const offer = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(offer);
  return {
    pc,
    video,
    sdp: pc.localDescription?.sdp ?? '',
    sendVideoPacket: (seq) =>
      video.sender.sendRtp(
        // A VP8 keyframe's first packet: descriptor S=1 PID=0, then a payload header with P=0 (RFC 7741, RFC 6386).
        new RtpPacket(new RtpHeader({ sequenceNumber: seq, timestamp: seq * 3000, marker: true }), Buffer.from([0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a])),
      ),
  };
}
