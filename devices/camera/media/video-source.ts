import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { H264Packetizer, Vp8Packetizer } from 'werift';
import type { RtpPacket } from 'werift';
import { readAnnexB, readIvf } from './containers.ts';
import type { EncodedFrame } from './containers.ts';
import { MediaTicker } from './media-ticker.ts';

export type VideoCodec = 'VP8' | 'H264';

export type VideoSourceOptions = {
  codec: VideoCodec;
  /** IVF file for VP8, Annex-B file for H264. Defaults to the clip shipped in ./clips. */
  clip?: string | URL;
  /** H264 only (Annex-B carries no timing): the clip's frame rate. Defaults to 30. */
  fps?: number;
  /** Negotiated RTP payload type. Defaults to 96 (VP8) / 97 (H264). */
  payloadType?: number;
  /** Defaults to a random SSRC (RFC 3550 §8.1). */
  ssrc?: number;
};

export type VideoPacketizerOptions = {
  codec: VideoCodec;
  payloadType?: number;
  ssrc?: number;
  /** The first packet's sequence number (0–65535); random by default, as RFC 3550 §5.1 asks of a live sender. */
  sequenceNumber?: number;
};

/** Turns encoded frames into RTP packets; packets of one frame share its timestamp. */
export type VideoPacketizer = { packetize(frame: EncodedFrame, rtpTimestamp: number): RtpPacket[] };

/** Keeps packets under typical path MTUs once IP/UDP/SRTP and RTP headers are added. */
export const MAX_RTP_PAYLOAD_BYTES = 1200;
/** RFC 3551 §5: video RTP clock. */
export const VIDEO_RTP_CLOCK_RATE = 90_000;

const CLIPS_DIR = new URL('./clips/', import.meta.url);
export const DEFAULT_CLIPS: Record<VideoCodec, URL> = {
  VP8: new URL('testsrc.vp8.ivf', CLIPS_DIR),
  H264: new URL('testsrc.h264', CLIPS_DIR),
};
/** The shipped H264 clip, like the VP8 one, is 30 fps. */
const DEFAULT_H264_FPS = 30;
const DEFAULT_PAYLOAD_TYPES: Record<VideoCodec, number> = { VP8: 96, H264: 97 };

/**
 * The RTP packetizer a VideoSource uses, exposed so tests can check its output without timers.
 * werift's packetizers are used as they are (checked against werift 0.25):
 * - VP8 (RFC 7741): 4-byte descriptor with a 15-bit PictureID, S=1 on the first packet,
 *   marker on the last one (§4.1), payload split in maxPayloadSize chunks;
 * - H264 (RFC 6184, packetization-mode=1): SPS+PPS aggregated in one STAP-A (§5.7.1),
 *   slices sent as single NAL unit packets (§5.6) or FU-A fragments (§5.8), marker on the
 *   last packet of the access unit. Input is declared 'annexb' so that a 3-byte start code is
 *   never mistaken for a NAL length prefix.
 */
export function createVideoPacketizer(options: VideoPacketizerOptions): VideoPacketizer {
  const packetizerOptions = {
    maxPayloadSize: MAX_RTP_PAYLOAD_BYTES,
    payloadType: options.payloadType ?? DEFAULT_PAYLOAD_TYPES[options.codec],
    ssrc: options.ssrc ?? randomInt(2 ** 32),
    sequenceNumber: options.sequenceNumber ?? randomInt(2 ** 16),
  };
  const packetizer =
    options.codec === 'VP8'
      ? new Vp8Packetizer(packetizerOptions)
      : new H264Packetizer({ ...packetizerOptions, inputFormat: 'annexb' });
  return {
    // werift wants a Buffer; wrap the frame's bytes without copying.
    packetize: (frame, rtpTimestamp) =>
      packetizer.packetize(Buffer.from(frame.data.buffer, frame.data.byteOffset, frame.data.byteLength), rtpTimestamp),
  };
}

/** Reads a clip from disk and returns its frames and frame rate (`h264Fps`: see VideoSourceOptions.fps). */
export function loadVideoClip(
  codec: VideoCodec,
  path: string | URL = DEFAULT_CLIPS[codec],
  h264Fps = DEFAULT_H264_FPS,
): { frames: EncodedFrame[]; fps: number } {
  const bytes = readFileSync(path);
  const clip = codec === 'VP8' ? readIvf(bytes) : readAnnexB(bytes, h264Fps);
  if (clip.frames[0]?.keyframe !== true) {
    // Looping back to frame 0 must leave the stream decodable, and start() begins there.
    throw new Error(`video clip ${String(path)}: the first frame must be a keyframe`);
  }
  return { frames: clip.frames, fps: clip.fps };
}

/**
 * A simulated camera's video: loops a pre-encoded clip at its frame rate and emits RTP.
 * The clip starts with a keyframe, so looping back to frame 0 keeps the stream decodable.
 */
export class VideoSource {
  readonly codec: VideoCodec;
  readonly fps: number;
  readonly payloadType: number;
  readonly ssrc: number;
  framesSent = 0;
  keyframesSent = 0;
  packetsSent = 0;
  /** RTP payload bytes, as counted in RTCP sender reports (RFC 3550 §6.4.1). */
  bytesSent = 0;

  private readonly frames: EncodedFrame[];
  private readonly packetizer: VideoPacketizer;
  private readonly ticker: MediaTicker;
  private nextFrameIndex = 0;
  private keyframeRequested = false;

  constructor(options: VideoSourceOptions) {
    this.codec = options.codec;
    const clip = loadVideoClip(options.codec, options.clip, options.fps);
    this.frames = clip.frames;
    this.fps = clip.fps;
    this.payloadType = options.payloadType ?? DEFAULT_PAYLOAD_TYPES[options.codec];
    this.ssrc = options.ssrc ?? randomInt(2 ** 32);
    this.packetizer = createVideoPacketizer({ codec: this.codec, payloadType: this.payloadType, ssrc: this.ssrc });
    this.ticker = new MediaTicker({ ticksPerSecond: this.fps, rtpClockRate: VIDEO_RTP_CLOCK_RATE });
  }

  get running(): boolean {
    return this.ticker.running;
  }

  /**
   * Emits the clip's frames at its frame rate, the first one on the next turn of the event
   * loop. Each start() begins with a keyframe, as a camera starting a stream would.
   */
  start(onPacket: (packet: RtpPacket) => void): void {
    this.ticker.start((rtpTimestamp) => this.sendNextFrame(rtpTimestamp, onPacket));
    this.keyframeRequested = true;
  }

  /** Stops emitting; no packet is emitted after this returns. Idempotent. */
  stop(): void {
    this.ticker.stop();
  }

  /**
   * Makes the next frame a keyframe (on PLI/FIR from a receiver). A clip cannot be re-encoded,
   * so playback jumps ahead to the clip's next keyframe instead of waiting for the GOP to end.
   */
  requestKeyframe(): void {
    this.keyframeRequested = true;
  }

  private sendNextFrame(rtpTimestamp: number, onPacket: (packet: RtpPacket) => void): void {
    if (this.keyframeRequested) {
      this.nextFrameIndex = this.findKeyframeFrom(this.nextFrameIndex);
      this.keyframeRequested = false;
    }
    const frame = this.frames[this.nextFrameIndex]!;
    this.nextFrameIndex = (this.nextFrameIndex + 1) % this.frames.length;

    this.framesSent++;
    if (frame.keyframe) this.keyframesSent++;
    for (const packet of this.packetizer.packetize(frame, rtpTimestamp)) {
      if (!this.running) return; // onPacket called stop()
      this.packetsSent++;
      this.bytesSent += packet.payload.length;
      onPacket(packet);
    }
  }

  private findKeyframeFrom(index: number): number {
    for (let step = 0; step < this.frames.length; step++) {
      const candidate = (index + step) % this.frames.length;
      if (this.frames[candidate]!.keyframe) return candidate;
    }
    return 0; // unreachable: loadVideoClip checked that frame 0 is a keyframe
  }
}
