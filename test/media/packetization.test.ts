// Round trip of every clip frame through the packetizer VideoSource uses and werift's
// depacketizers, then decoding of the reassembled stream with ffprobe.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Vp8RtpPayload } from 'werift';
import type { RtpPacket } from 'werift';
import { afterAll, describe, expect, it } from 'vitest';
import { createVideoPacketizer, loadVideoClip, MAX_RTP_PAYLOAD_BYTES } from '../../devices/camera/media/video-source.ts';
import type { VideoCodec } from '../../devices/camera/media/video-source.ts';
import {
  depacketize,
  expectConsecutiveSequenceNumbers,
  nalUnitsOf,
  probeVideo,
  requireFfprobe,
  writeIvf,
} from './helpers.ts';

/** RFC 7741 §4.2: S=1 on the first packet of the frame only, one PictureID per frame. */
function expectVp8Descriptors(packets: RtpPacket[]): void {
  const descriptors = packets.map((packet) => Vp8RtpPayload.deSerialize(packet.payload));
  expect(descriptors.map((descriptor) => descriptor.sBit)).toEqual(packets.map((_, i) => (i === 0 ? 1 : 0)));
  expect(new Set(descriptors.map((descriptor) => descriptor.pictureId)).size).toBe(1);
}

const clipDimensions = { width: 320, height: 240 };
const tempDir = mkdtempSync(join(tmpdir(), 'tali-media-'));
afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

describe.each([
  { codec: 'VP8' as VideoCodec, file: 'roundtrip.ivf', probedCodec: 'vp8' },
  { codec: 'H264' as VideoCodec, file: 'roundtrip.h264', probedCodec: 'h264' },
])('$codec packetization', ({ codec, file, probedCodec }) => {
  const clip = loadVideoClip(codec);
  const packetizer = createVideoPacketizer({ codec, payloadType: 100, ssrc: 0x1234abcd });
  const FRAME_TIMESTAMP_STEP = 90_000 / clip.fps;
  const timestampOf = (frameIndex: number) => 1000 + frameIndex * FRAME_TIMESTAMP_STEP;
  const packetsByFrame = clip.frames.map((frame) => packetizer.packetize(frame, timestampOf(frame.index)));
  const depacketized = packetsByFrame.map((packets) => depacketize(codec, packets));

  it('sends each frame in packets of at most 1200 payload bytes, marker on the last one', () => {
    for (const [index, packets] of packetsByFrame.entries()) {
      expect(packets.length, `frame ${index}`).toBeGreaterThan(0);
      for (const packet of packets) {
        expect(packet.payload.length).toBeLessThanOrEqual(MAX_RTP_PAYLOAD_BYTES);
        expect(packet.header).toMatchObject({ payloadType: 100, ssrc: 0x1234abcd, timestamp: timestampOf(index) });
      }
      expect(packets.map((packet) => packet.header.marker)).toEqual(packets.map((_, i) => i === packets.length - 1));
      if (codec === 'VP8') expectVp8Descriptors(packets);
    }
    // Keyframes are larger than an MTU, so fragmentation is exercised.
    expect(packetsByFrame[0]!.length).toBeGreaterThan(1);
  });

  it('numbers packets consecutively (mod 2^16) across frames', () => {
    expectConsecutiveSequenceNumbers(packetsByFrame.flat());
  });

  it('depacketizes back to the original frames, with the same keyframes', () => {
    for (const frame of clip.frames) {
      const received = depacketize(codec, packetsByFrame[frame.index]!);
      // H264: werift writes 4-byte start codes where the clip may have 3-byte ones; compare NAL units.
      if (codec === 'VP8') expect(received.data.equals(frame.data), `frame ${frame.index}`).toBe(true);
      else expect(nalUnitsOf(received.data), `frame ${frame.index}`).toEqual(nalUnitsOf(frame.data));
      expect(received.keyframe, `frame ${frame.index}`).toBe(frame.keyframe);
    }
  });

  it('gives a stream ffprobe decodes without error: 120 frames of 320x240', (ctx) => {
    requireFfprobe(ctx);
    const frames = depacketized.map((frame) => frame.data);
    const path = join(tempDir, file);
    const { width, height } = clipDimensions;
    writeFileSync(path, codec === 'VP8' ? writeIvf(frames, width, height, clip.fps) : Buffer.concat(frames));
    expect(probeVideo(path)).toMatchObject({ codec_name: probedCodec, ...clipDimensions, nb_read_frames: '120' });
  });
});
