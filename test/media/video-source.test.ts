import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RtpPacket } from 'werift';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { loadVideoClip, VideoSource } from '../../devices/camera/media/video-source.ts';
import type { VideoCodec } from '../../devices/camera/media/video-source.ts';
import {
  collectPackets,
  countCompleteFrames,
  depacketize,
  expectConsecutiveSequenceNumbers,
  frameTimestampSteps,
  groupByFrame,
  sameFrameContent,
  writeIvf,
} from './helpers.ts';

const shippedClips = { VP8: loadVideoClip('VP8'), H264: loadVideoClip('H264') };

/** Index in the shipped clip of the frame these packets carry, -1 if none. */
function clipIndexOf(codec: VideoCodec, framePackets: RtpPacket[]): number {
  const received = depacketize(codec, framePackets);
  return shippedClips[codec].frames.findIndex((frame) => sameFrameContent(codec, received, frame));
}

const tempDir = mkdtempSync(join(tmpdir(), 'tali-video-source-'));
afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

describe.each(['VP8', 'H264'] as const)('VideoSource %s', (codec) => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('emits frames 3000 apart on the 90 kHz clock, numbered consecutively, from a keyframe', async () => {
    const source = new VideoSource({ codec, payloadType: 110, ssrc: 42 });
    const packets = await collectPackets(source, (packets) => countCompleteFrames(packets) === 4);
    const frames = groupByFrame(packets);

    expect(frames).toHaveLength(4);
    expect(depacketize(codec, frames[0]!).keyframe).toBe(true);
    for (const [i, frame] of frames.entries()) {
      expect(new Set(frame.map((packet) => packet.header.timestamp)).size, `frame ${i}`).toBe(1);
      expect(frame.map((packet) => packet.header.marker)).toEqual(frame.map((_, j) => j === frame.length - 1));
    }
    expect(frameTimestampSteps(frames)).toEqual([3000, 3000, 3000]);
    expectConsecutiveSequenceNumbers(packets);
    for (const packet of packets) expect(packet.header).toMatchObject({ payloadType: 110, ssrc: 42 });

    expect(source).toMatchObject({ payloadType: 110, ssrc: 42, running: false });
    expect(source).toMatchObject({ framesSent: 4, keyframesSent: 1, packetsSent: packets.length });
    expect(source.bytesSent).toBe(packets.reduce((sum, packet) => sum + packet.payload.length, 0));
  });

  it('requestKeyframe() makes the very next frame a keyframe, jumping ahead to the next GOP', async () => {
    const source = new VideoSource({ codec });
    let requested = false;
    const packets = await collectPackets(source, (packets) => {
      const frames = countCompleteFrames(packets);
      if (frames === 2 && !requested) {
        source.requestKeyframe();
        requested = true;
      }
      return frames === 3;
    });
    const frames = groupByFrame(packets);

    expect(frames.map((frame) => depacketize(codec, frame).keyframe)).toEqual([true, false, true]);
    // The shipped clip's keyframes are 0, 30, 60, 90: after frames 0 and 1 comes frame 30.
    expect(frames.map((frame) => clipIndexOf(codec, frame))).toEqual([0, 1, 30]);
    expect(source.keyframesSent).toBe(2);
  });

  it('stops emitting when stop() is called, idempotently', () => {
    vi.useFakeTimers();
    const source = new VideoSource({ codec });
    const packets: RtpPacket[] = [];
    source.start((packet) => packets.push(packet));
    vi.advanceTimersByTime(100); // frames at 0, 33, 66 and 99 ms
    source.stop();
    source.stop();
    const sentBeforeStop = packets.length;
    vi.advanceTimersByTime(1000);
    expect(packets).toHaveLength(sentBeforeStop);
    expect(source).toMatchObject({ framesSent: 4, running: false });
  });

  it('restarts with a keyframe, continuous sequence numbers and timestamps following the wall clock', () => {
    vi.useFakeTimers();
    const source = new VideoSource({ codec });
    const packets: RtpPacket[] = [];
    source.start((packet) => packets.push(packet));
    vi.advanceTimersByTime(50); // frames at 0 and 33 ms
    source.stop();
    vi.advanceTimersByTime(1000);
    source.start((packet) => packets.push(packet));
    vi.advanceTimersByTime(1); // one more frame
    source.stop();

    const frames = groupByFrame(packets);
    expect(frames.map((frame) => depacketize(codec, frame).keyframe)).toEqual([true, false, true]);
    expectConsecutiveSequenceNumbers(packets);
    // Restarted 1050 ms after the first frame: its timestamp is 1050 ms * 90 kHz = 94500 after it.
    expect(frameTimestampSteps(frames)).toEqual([3000, 94_500 - 3000]);
  });
});

describe('VideoSource looping', () => {
  it('loops back to frame 0 (a keyframe) with continuous sequence numbers and timestamps', async () => {
    // A 3-frame clip, so the loop comes after 100 ms rather than after the shipped clip's 4 s.
    const clip = shippedClips.VP8;
    const shortClip = join(tempDir, 'three-frames.ivf');
    writeFileSync(shortClip, writeIvf(clip.frames.slice(0, 3).map((frame) => frame.data), 320, 240, 30));

    const source = new VideoSource({ codec: 'VP8', clip: shortClip });
    const packets = await collectPackets(source, (packets) => countCompleteFrames(packets) === 7);
    const frames = groupByFrame(packets);

    expect(frames.map((frame) => clipIndexOf('VP8', frame))).toEqual([0, 1, 2, 0, 1, 2, 0]);
    expect(source.keyframesSent).toBe(3);
    expect(frameTimestampSteps(frames)).toEqual(Array(6).fill(3000));
    expectConsecutiveSequenceNumbers(packets);
  });

  it('refuses a clip that does not start with a keyframe', () => {
    const clip = shippedClips.VP8;
    const badClip = join(tempDir, 'no-keyframe.ivf');
    writeFileSync(badClip, writeIvf([clip.frames[1]!.data], 320, 240, 30));
    expect(() => new VideoSource({ codec: 'VP8', clip: badClip })).toThrow(/first frame must be a keyframe/);
  });
});
