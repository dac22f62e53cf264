/**
 * The media tali negotiates. Payload types of PCMU (0) and PCMA (8) are static (RFC 3551 §6), so werift needs them
 * fixed up front; the others are dynamic and follow the offer.
 */
import { RTCRtpCodecParameters, type RTCPFB } from 'werift';

export const VIDEO_CODECS = ['VP8', 'H264'] as const;
export const AUDIO_CODECS = ['opus', 'PCMU', 'PCMA'] as const;
export type VideoCodecName = (typeof VIDEO_CODECS)[number];
export type AudioCodecName = (typeof AUDIO_CODECS)[number];
export type CodecName = VideoCodecName | AudioCodecName;

/** Keyframe requests both ways: PLI (RFC 4585 §6.3.1) and FIR (RFC 5104 §4.3.1); NACK for loss repair. */
const videoFeedback: RTCPFB[] = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }];

export function codecParameters(name: CodecName): RTCRtpCodecParameters {
  switch (name) {
    case 'VP8':
      return new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, rtcpFeedback: videoFeedback });
    case 'H264':
      // RFC 6184 §8.1: packetization-mode 1 (FU-A) is what browsers and cameras use; 42e01f = constrained baseline 3.1.
      return new RTCRtpCodecParameters({
        mimeType: 'video/H264',
        clockRate: 90000,
        rtcpFeedback: videoFeedback,
        parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
      });
    case 'opus':
      return new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 });
    case 'PCMU':
      return new RTCRtpCodecParameters({ mimeType: 'audio/PCMU', clockRate: 8000, channels: 1, payloadType: 0 });
    case 'PCMA':
      return new RTCRtpCodecParameters({ mimeType: 'audio/PCMA', clockRate: 8000, channels: 1, payloadType: 8 });
  }
}

/** "video/H264" → "H264"; undefined for anything tali does not negotiate. */
export function codecNameOf(mimeType: string): CodecName | undefined {
  const name = mimeType.split('/')[1]?.toLowerCase();
  return [...VIDEO_CODECS, ...AUDIO_CODECS].find((c) => c.toLowerCase() === name);
}
