/**
 * libpeer's RTP packetizer (src/rtp.c at 9319aa4), as it is, so the bridge gets libpeer's packets:
 *
 * - H264 (PT 96, SSRC 1): each NAL unit of an Annex B frame becomes one single-NAL packet when it fits
 *   RTP_PAYLOAD_SIZE (CONFIG_MTU 1300 − 12), else FU-A fragments of FU_PAYLOAD_SIZE (1286); SPS and PPS go alone,
 *   never in a STAP-A. Marker bit on the last packet of each slice (NAL types 1 and 5); the timestamp moves on by
 *   90000 / 30 after each slice, whatever the real frame rate.
 * - G.711 (PCMA: PT 8, SSRC 4; PCMU: PT 0, SSRC 5): one packet per call, timestamp + 160 (20 ms at 8 kHz).
 * - Sequence numbers and timestamps start at 0.
 */
import { RtpHeader, RtpPacket } from 'werift';

export const CONFIG_MTU = 1300;
export const RTP_PAYLOAD_SIZE = CONFIG_MTU - 12;
export const FU_PAYLOAD_SIZE = CONFIG_MTU - 12 - 1 - 1;
const FU_A = 28;

export const LIBPEER_RTP = {
  H264: { payloadType: 96, ssrc: 1, timestampIncrement: 90000 / 30 },
  PCMA: { payloadType: 8, ssrc: 4, timestampIncrement: 160 },
  PCMU: { payloadType: 0, ssrc: 5, timestampIncrement: 160 },
} as const;

export type LibpeerCodec = keyof typeof LIBPEER_RTP;

export class LibpeerRtpEncoder {
  readonly codec: LibpeerCodec;
  #seq = 0;
  #timestamp = 0;

  constructor(codec: LibpeerCodec) {
    this.codec = codec;
  }

  /** rtp_encoder_encode(): one H264 access unit in Annex B, or one 20 ms G.711 frame. */
  encode(frame: Uint8Array): RtpPacket[] {
    return this.codec === 'H264' ? this.#h264(frame) : [this.#packet(Buffer.from(frame), false, true)];
  }

  #h264(frame: Uint8Array): RtpPacket[] {
    const packets: RtpPacket[] = [];
    for (const nalu of naluUnits(frame)) {
      const type = (nalu[0] as number) & 0x1f;
      const slice = type === 5 || type === 1;
      if (nalu.length <= RTP_PAYLOAD_SIZE) {
        packets.push(this.#packet(Buffer.from(nalu), slice, slice));
        continue;
      }
      // FU-A: every fragment carries the slice's timestamp, which then moves on (rtp_encoder_encode_h264_fu_a).
      const timestamp = this.#timestamp;
      if (slice) this.#timestamp = (this.#timestamp + LIBPEER_RTP.H264.timestampIncrement) >>> 0;
      const indicator = (nalu[0] as number) & 0x60 | FU_A;
      let rest = nalu.subarray(1);
      let start = true;
      while (rest.length > 0) {
        const last = rest.length <= FU_PAYLOAD_SIZE;
        const chunk = rest.subarray(0, FU_PAYLOAD_SIZE);
        const fuHeader = (start ? 0x80 : 0) | (last ? 0x40 : 0) | type;
        packets.push(this.#packet(Buffer.concat([Buffer.from([indicator, fuHeader]), chunk]), last, false, timestamp));
        rest = rest.subarray(chunk.length);
        start = false;
      }
    }
    return packets;
  }

  #packet(payload: Buffer, marker: boolean, advance: boolean, timestamp = this.#timestamp): RtpPacket {
    const { payloadType, ssrc, timestampIncrement } = LIBPEER_RTP[this.codec];
    const header = new RtpHeader({ payloadType, ssrc, sequenceNumber: this.#seq, timestamp, marker });
    this.#seq = (this.#seq + 1) & 0xffff;
    if (advance) this.#timestamp = (this.#timestamp + timestampIncrement) >>> 0;
    return new RtpPacket(header, payload);
  }
}

/**
 * h264_find_nalu(): the NAL units between 00 00 01 start codes (a 4-byte start code leaves a trailing zero, which
 * libpeer strips with the other trailing zero bytes).
 */
export function naluUnits(frame: Uint8Array): Uint8Array[] {
  const starts: number[] = [];
  for (let i = 2; i < frame.length; i++) {
    if (frame[i - 2] === 0 && frame[i - 1] === 0 && frame[i] === 1) starts.push(i + 1);
  }
  return starts.map((start, n) => {
    let end = n + 1 < starts.length ? (starts[n + 1] as number) - 3 : frame.length;
    while (end > start && frame[end - 1] === 0) end--;
    return frame.subarray(start, end);
  });
}
