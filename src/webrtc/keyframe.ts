/**
 * Does this RTP packet start a keyframe? Read straight from the payload bytes, without allocating, because it runs
 * on every received video packet. Only the first packet of a keyframe answers true, so counting these counts
 * keyframes (callers still de-duplicate by RTP timestamp for multi-slice H264 IDR pictures).
 */
export type VideoCodec = 'VP8' | 'H264';

export function startsKeyframe(codec: VideoCodec, payload: Uint8Array): boolean {
  return codec === 'VP8' ? vp8StartsKeyframe(payload) : h264StartsKeyframe(payload);
}

/** RFC 7741 §4.2 payload descriptor, then the VP8 payload header's P bit (RFC 6386 §9.1: 0 = key frame). */
export function vp8StartsKeyframe(p: Uint8Array): boolean {
  if (p.length < 1) return false;
  const b0 = p[0] as number;
  const start = (b0 & 0x10) !== 0; // S: start of a VP8 partition
  const pid = b0 & 0x07; // partition index; the payload header only exists in partition 0
  if (!start || pid !== 0) return false;
  let i = 1;
  if (b0 & 0x80) {
    // X: extension byte with I, L, T, K flags
    const x = p[i++];
    if (x === undefined) return false;
    if (x & 0x80) i += (p[i] ?? 0) & 0x80 ? 2 : 1; // I: PictureID, 7 or 15 bits (M flag)
    if (x & 0x40) i += 1; // L: TL0PICIDX
    if (x & 0x30) i += 1; // T or K: TID/Y/KEYIDX
  }
  const header = p[i];
  return header !== undefined && (header & 0x01) === 0;
}

const IDR = 5;
const SPS = 7;

/**
 * RFC 6184 §5.6–5.8: a single NAL unit, a STAP-A (24) or the first fragment of an FU-A (28) carrying an IDR slice,
 * or the SPS that precedes one. Counting from the SPS matters to a relay that starts a viewer at a keyframe: the
 * IDR slice alone is undecodable without the parameter sets sent just before it.
 */
export function h264StartsKeyframe(p: Uint8Array): boolean {
  if (p.length < 2) return false;
  const type = (p[0] as number) & 0x1f;
  if (type === IDR || type === SPS) return true;
  if (type === 28) {
    const fuHeader = p[1] as number;
    return (fuHeader & 0x80) !== 0 && (fuHeader & 0x1f) === IDR; // S bit and the fragmented NAL's type
  }
  if (type === 24) {
    for (let i = 1; i + 2 < p.length; ) {
      const size = ((p[i] as number) << 8) | (p[i + 1] as number);
      const nal = (p[i + 2] as number) & 0x1f;
      if (nal === IDR || nal === SPS) return true;
      i += 2 + size;
    }
  }
  return false;
}
