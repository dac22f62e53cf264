import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readAnnexB, readIvf } from '../../devices/camera/media/containers.ts';
import { DEFAULT_CLIPS } from '../../devices/camera/media/video-source.ts';
import { keyframeIndexes, nalUnitsOf, writeIvf } from './helpers.ts';

const vp8File = readFileSync(DEFAULT_CLIPS.VP8);
const h264File = readFileSync(DEFAULT_CLIPS.H264);

describe('readIvf', () => {
  const clip = readIvf(vp8File);

  it('reads the shipped VP8 clip: 320x240, 30 fps, 120 frames, a keyframe every 30 frames', () => {
    expect(clip).toMatchObject({ codec: 'VP8', width: 320, height: 240, fps: 30 });
    expect(clip.frames).toHaveLength(120);
    expect(clip.frames.map((frame) => frame.index)).toEqual([...Array(120).keys()]);
    expect(keyframeIndexes(clip.frames)).toEqual([0, 30, 60, 90]);
  });

  it('flags as keyframes exactly the frames with the VP8 key frame start code (RFC 6386 §9.1)', () => {
    for (const frame of clip.frames) {
      const hasStartCode = frame.data[3] === 0x9d && frame.data[4] === 0x01 && frame.data[5] === 0x2a;
      expect(hasStartCode, `frame ${frame.index}`).toBe(frame.keyframe);
    }
  });

  it('reads back what writeIvf wrote', () => {
    const frames = [Uint8Array.of(0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a), Uint8Array.of(0x31, 0x00)];
    const parsed = readIvf(writeIvf(frames, 640, 480, 25));
    expect(parsed).toMatchObject({ width: 640, height: 480, fps: 25 });
    expect(parsed.frames.map(({ data, keyframe, index }) => ({ bytes: [...data], keyframe, index }))).toEqual([
      { bytes: [...frames[0]!], keyframe: true, index: 0 },
      { bytes: [...frames[1]!], keyframe: false, index: 1 },
    ]);
  });

  it('rejects malformed files with a clear error', () => {
    const valid = writeIvf([Uint8Array.of(0x10, 0x02, 0x00)], 320, 240, 30);
    const withMagic = Buffer.from(valid);
    withMagic.write('RIFF', 0, 'latin1');
    const withCodec = Buffer.from(valid);
    withCodec.write('VP90', 8, 'latin1');

    expect(() => readIvf(valid.subarray(0, 20))).toThrow(/shorter than the 32-byte header/);
    expect(() => readIvf(withMagic)).toThrow(/bad magic "RIFF"/);
    expect(() => readIvf(withCodec)).toThrow(/codec "VP90" is not supported/);
    expect(() => readIvf(valid.subarray(0, 32 + 8))).toThrow(/truncated header of frame 0/);
    expect(() => readIvf(valid.subarray(0, valid.length - 1))).toThrow(/truncated frame 0: 3 bytes announced, 2 left/);
  });
});

describe('readAnnexB', () => {
  const clip = readAnnexB(h264File, 30);

  it('reads the shipped H264 clip: 120 access units, an IDR every 30 frames', () => {
    expect(clip).toMatchObject({ codec: 'H264', fps: 30 });
    expect(clip.frames).toHaveLength(120);
    expect(clip.frames.map((frame) => frame.index)).toEqual([...Array(120).keys()]);
    expect(keyframeIndexes(clip.frames)).toEqual([0, 30, 60, 90]);
  });

  it('gives SPS + PPS + IDR for keyframes, one slice otherwise, and loses no byte', () => {
    for (const frame of clip.frames) {
      const nalTypes = nalUnitsOf(frame.data).map((nal) => parseInt(nal.slice(0, 2), 16) & 0x1f);
      expect(nalTypes, `frame ${frame.index}`).toEqual(frame.keyframe ? [7, 8, 5] : [1]);
      // Annex-B, as werift's H264Packetizer (inputFormat 'annexb') requires.
      expect(Buffer.from(frame.data.subarray(0, 4)).toString('hex')).toMatch(/^(000001|00000001)/);
    }
    expect(Buffer.concat(clip.frames.map((frame) => frame.data))).toEqual(h264File);
  });

  it('is constrained baseline, level 3.1 (profile_idc 66, constraint_set1, level_idc 31)', () => {
    const sps = nalUnitsOf(clip.frames[0]!.data)[0]!;
    const [profileIdc, constraintFlags, levelIdc] = Buffer.from(sps.slice(2, 8), 'hex');
    expect(profileIdc).toBe(66);
    expect(constraintFlags! & 0x40).toBe(0x40);
    expect(levelIdc).toBe(31);
  });

  // Hand-made NAL units: header byte, then a first slice-header byte whose top bit is
  // first_mb_in_slice == 0 (0x80) or not (0x40).
  const SPS = [0x67, 0x42, 0xc0, 0x1f];
  const PPS = [0x68, 0xce, 0x3c, 0x80];
  const AUD = [0x09, 0xf0];
  const idrSlice = (firstMbIsZero: boolean) => [0x65, firstMbIsZero ? 0x88 : 0x40, 0x11];
  const slice = (firstMbIsZero: boolean) => [0x41, firstMbIsZero ? 0x9a : 0x40, 0x22];
  const longStart = [0, 0, 0, 1];
  const shortStart = [0, 0, 1];

  it('accepts 3- and 4-byte start codes and groups a multi-slice picture into one access unit', () => {
    const stream = Uint8Array.from([
      ...longStart, ...SPS, ...longStart, ...PPS, ...shortStart, ...idrSlice(true), ...shortStart, ...idrSlice(false),
      ...longStart, ...slice(true), ...shortStart, ...slice(false),
      ...longStart, ...AUD, ...shortStart, ...slice(true),
    ]);
    const frames = readAnnexB(stream, 30).frames;
    expect(frames.map((frame) => nalUnitsOf(frame.data).length)).toEqual([4, 2, 2]);
    expect(frames.map((frame) => frame.keyframe)).toEqual([true, false, false]);
    expect(Buffer.concat(frames.map((frame) => frame.data))).toEqual(Buffer.from(stream));
  });

  it('rejects malformed streams with a clear error', () => {
    const read = (bytes: number[]) => () => readAnnexB(Uint8Array.from(bytes), 30);
    expect(read([1, 2, 3, 4])).toThrow(/no start code found/);
    expect(read([0xff, ...longStart, ...slice(true)])).toThrow(/garbage before the first start code/);
    expect(read([...longStart, ...longStart, ...slice(true)])).toThrow(/empty NAL unit at offset 0/);
    expect(read([...longStart, 0xe5, 0x88])).toThrow(/forbidden_zero_bit/);
    expect(read([...longStart, ...slice(true), ...longStart, ...SPS])).toThrow(/access unit 1 at offset 7 has no slice/);
    expect(() => readAnnexB(h264File, 0)).toThrow(/fps must be a positive number/);
  });
});
