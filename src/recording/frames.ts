/**
 * From RTP packets to timed frames: the per-track clock (RTP timestamps unwrapped and placed on the bridge's clock)
 * and the video frame assembler (packets of one picture, ended by the marker bit, depacketized by werift).
 */
import { dePacketizeRtpPackets, type RtpPacket } from 'werift';

/**
 * RTP timestamps of one track in milliseconds on the bridge's monotonic clock: the track's first packet is placed at
 * its arrival time, later ones follow their RTP timestamps (RFC 3550 §5.1). Placing every track by its first
 * arrival keeps audio and video in step to within the network's jitter, without RTCP sender reports.
 */
export class RtpClock {
  readonly #rate: number;
  #baseMs: number | undefined;
  #lastRaw = 0;
  #unwrapped = 0;

  constructor(clockRate: number) {
    this.#rate = clockRate;
  }

  toMs(rtpTimestamp: number, arrivalMs: number): number {
    if (this.#baseMs === undefined) {
      this.#baseMs = arrivalMs;
      this.#lastRaw = rtpTimestamp;
      return arrivalMs;
    }
    // Signed 32-bit difference: wraps around 2^32 (about 13 h at 90 kHz) and tolerates slightly older timestamps.
    this.#unwrapped += (rtpTimestamp - this.#lastRaw) | 0;
    this.#lastRaw = rtpTimestamp;
    return this.#baseMs + (this.#unwrapped * 1000) / this.#rate;
  }
}

export interface VideoFrame {
  /** VP8 frame, or H264 access unit in Annex-B form. */
  data: Buffer;
  keyframe: boolean;
  rtpTimestamp: number;
}

export interface AssembledVideo {
  frame?: VideoFrame;
  /** Packets were lost: frames are dropped until the next keyframe, which the caller should ask for. */
  lost?: boolean;
}

/**
 * Groups a video track's packets into frames. A gap in sequence numbers breaks the frame it falls in, and every frame
 * after it until a keyframe (they would reference a picture the file does not have): the recording skips ahead
 * rather than storing pictures that decode as garbage. Packets are taken in arrival order; a reordered packet counts
 * as a loss.
 */
export class VideoAssembler {
  readonly #codec: 'VP8' | 'MPEG4/ISO/AVC';
  #packets: RtpPacket[] = [];
  #timestamp = -1;
  #lastSeq: number | undefined;
  #broken = false;
  #needKeyframe = false;

  constructor(codec: 'VP8' | 'H264') {
    this.#codec = codec === 'VP8' ? 'VP8' : 'MPEG4/ISO/AVC';
  }

  push(packet: RtpPacket): AssembledVideo {
    const { sequenceNumber: seq, timestamp, marker } = packet.header;
    let lost = false;
    if (this.#lastSeq !== undefined) {
      const step = (seq - this.#lastSeq) & 0xffff;
      if (step === 0 || step > 0x8000) return {}; // a duplicate or a late packet: already counted as lost
      if (step !== 1) lost = true;
    }
    this.#lastSeq = seq;
    if (this.#packets.length > 0 && timestamp !== this.#timestamp) {
      // The previous frame's last packet (the one with the marker) never came: drop that frame.
      this.#broken = true;
      this.#complete();
      lost = true;
    }
    if (lost) {
      // The missing packets belonged to the frame in progress or to the one starting now: neither is whole.
      this.#broken = true;
      this.#needKeyframe = true;
    }
    if (this.#packets.length === 0) this.#timestamp = timestamp;
    this.#packets.push(packet);
    const out: AssembledVideo = marker ? this.#complete() : {};
    if (lost) out.lost = true;
    return out;
  }

  #complete(): AssembledVideo {
    const packets = this.#packets;
    const broken = this.#broken;
    this.#packets = [];
    this.#broken = false;
    if (broken || packets.length === 0) return {};
    let frame: VideoFrame;
    try {
      const { data, isKeyframe } = dePacketizeRtpPackets(this.#codec, packets);
      frame = { data, keyframe: isKeyframe, rtpTimestamp: this.#timestamp };
    } catch {
      this.#needKeyframe = true;
      return { lost: true };
    }
    if (frame.data.length === 0) return {};
    if (this.#needKeyframe && !frame.keyframe) return {};
    if (frame.keyframe) this.#needKeyframe = false;
    return { frame };
  }
}
