import { spawnSync } from 'node:child_process';
import { H264RtpPayload, Vp8RtpPayload } from 'werift';
import type { RtpPacket } from 'werift';
import { expect } from 'vitest';
import type { TestContext } from 'vitest';
import type { EncodedFrame } from '../../devices/camera/media/containers.ts';
import type { VideoCodec } from '../../devices/camera/media/video-source.ts';

/** Anything that emits RTP packets between start() and stop(). */
export type PacketSource = { start(onPacket: (packet: RtpPacket) => void): void; stop(): void };

/**
 * Starts `source` and resolves with its packets once `isDone(packets)` returns true (checked
 * after each packet), stopping the source. Rejects if that takes longer than `timeoutMs`.
 */
export function collectPackets(
  source: PacketSource,
  isDone: (packets: RtpPacket[]) => boolean,
  timeoutMs = 2000,
): Promise<RtpPacket[]> {
  return new Promise((resolve, reject) => {
    const packets: RtpPacket[] = [];
    const timeout = setTimeout(() => {
      source.stop();
      reject(new Error(`timed out after ${timeoutMs} ms with ${packets.length} packets`));
    }, timeoutMs);
    source.start((packet) => {
      packets.push(packet);
      if (!isDone(packets)) return;
      clearTimeout(timeout);
      source.stop();
      resolve(packets);
    });
  });
}

/** Splits packets into frames: a frame ends with the packet carrying the marker bit. */
export function groupByFrame(packets: RtpPacket[]): RtpPacket[][] {
  const frames: RtpPacket[][] = [[]];
  for (const packet of packets) {
    frames.at(-1)!.push(packet);
    if (packet.header.marker) frames.push([]);
  }
  return frames.filter((frame) => frame.length > 0);
}

/** RTP timestamp increments between consecutive packets, modulo 2^32. */
export function timestampSteps(packets: RtpPacket[]): number[] {
  const timestamps = packets.map((packet) => packet.header.timestamp);
  return timestamps.slice(1).map((timestamp, i) => (timestamp - timestamps[i]! + 2 ** 32) % 2 ** 32);
}

/** RTP timestamp increments between consecutive frames. */
export function frameTimestampSteps(frames: RtpPacket[][]): number[] {
  return timestampSteps(frames.map((frame) => frame[0]!));
}

export function expectConsecutiveSequenceNumbers(packets: RtpPacket[]): void {
  const sequenceNumbers = packets.map((packet) => packet.header.sequenceNumber);
  const expected = sequenceNumbers.map((_, i) => (sequenceNumbers[0]! + i) & 0xffff);
  expect(sequenceNumbers).toEqual(expected);
}

export function countCompleteFrames(packets: RtpPacket[]): number {
  return packets.filter((packet) => packet.header.marker).length;
}

export type DepacketizedFrame = { data: Buffer; keyframe: boolean };

/**
 * Reassembles one frame from its RTP packets with werift's depacketizers, as a receiver would.
 * VP8 (RFC 7741): the payloads after their descriptors, concatenated; the key frame flag is in
 * the VP8 payload header of the first packet. H264 (RFC 6184): each NAL unit with a 4-byte start
 * code, FU-A fragments joined.
 */
export function depacketize(codec: VideoCodec, packets: RtpPacket[]): DepacketizedFrame {
  if (codec === 'VP8') {
    const payloads = packets.map((packet) => Vp8RtpPayload.deSerialize(packet.payload));
    const data = Buffer.concat(payloads.map((payload) => payload.payload));
    return { data, keyframe: payloads[0]?.isKeyframe ?? false };
  }
  const nalUnits: Buffer[] = [];
  let fragment: Buffer | undefined;
  let keyframe = false;
  for (const packet of packets) {
    const payload = H264RtpPayload.deSerialize(packet.payload, fragment);
    fragment = payload.fragment;
    if (payload.payload) nalUnits.push(payload.payload);
    keyframe ||= payload.isKeyframe;
  }
  if (fragment) throw new Error('H264 frame ends in the middle of an FU-A');
  return { data: Buffer.concat(nalUnits), keyframe };
}

/** Whether a received frame carries the clip frame's content (H264: same NAL units, whatever the start codes). */
export function sameFrameContent(codec: VideoCodec, received: DepacketizedFrame, frame: EncodedFrame): boolean {
  return codec === 'VP8'
    ? received.data.equals(frame.data)
    : nalUnitsOf(received.data).join() === nalUnitsOf(frame.data).join();
}

/** Writes VP8 frames as an IVF file (inverse of readIvf). */
export function writeIvf(frames: Uint8Array[], width: number, height: number, fps: number): Buffer {
  const header = Buffer.alloc(32);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4);
  header.writeUInt16LE(32, 6);
  header.write('VP80', 8, 'latin1');
  header.writeUInt16LE(width, 12);
  header.writeUInt16LE(height, 14);
  header.writeUInt32LE(fps, 16);
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(frames.length, 24);
  const parts: Uint8Array[] = [header];
  frames.forEach((frame, pts) => {
    const frameHeader = Buffer.alloc(12);
    frameHeader.writeUInt32LE(frame.length, 0);
    frameHeader.writeBigUInt64LE(BigInt(pts), 4);
    parts.push(frameHeader, frame);
  });
  return Buffer.concat(parts);
}

/**
 * The NAL units of an Annex-B buffer as hex strings, without start codes nor trailing zeros,
 * to compare streams whatever start code lengths they use. Deliberately independent of readAnnexB.
 */
export function nalUnitsOf(annexB: Uint8Array): string[] {
  const units: string[] = [];
  const pushUnit = (from: number, to: number) => {
    while (to > from && annexB[to - 1] === 0) to--;
    units.push(Buffer.from(annexB.subarray(from, to)).toString('hex'));
  };
  let unitStart = -1;
  for (let i = 0; i + 2 < annexB.length; i++) {
    if (annexB[i] === 0 && annexB[i + 1] === 0 && annexB[i + 2] === 1) {
      if (unitStart >= 0) pushUnit(unitStart, i);
      unitStart = i + 3;
      i += 2;
    }
  }
  if (unitStart >= 0) pushUnit(unitStart, annexB.length);
  return units;
}

export function keyframeIndexes(frames: EncodedFrame[]): number[] {
  return frames.filter((frame) => frame.keyframe).map((frame) => frame.index);
}

const ffprobeInstalled = spawnSync('ffprobe', ['-version'], { stdio: 'ignore' }).status === 0;

/** Skips the test when ffprobe is missing, except on CI (CI=true) where it must be installed. */
export function requireFfprobe(ctx: TestContext): void {
  if (ffprobeInstalled) return;
  const message = 'ffprobe not found: install ffmpeg: apt-get install -y ffmpeg';
  if (process.env.CI === 'true') throw new Error(message);
  ctx.skip(message);
}

export type ProbedStream = { codec_name: string; width: number; height: number; nb_read_frames: string };

/** Decodes the whole file with ffprobe; decoding errors (stderr) fail the probe. */
export function probeVideo(path: string): ProbedStream {
  const result = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-of', 'json', path], {
    encoding: 'utf8',
  });
  if (result.status !== 0 || result.stderr.trim() !== '') {
    throw new Error(`ffprobe ${path} failed (status ${result.status}): ${result.stderr}`);
  }
  const streams = (JSON.parse(result.stdout) as { streams: ProbedStream[] }).streams;
  if (streams.length !== 1) throw new Error(`ffprobe ${path}: expected 1 stream, got ${streams.length}`);
  return streams[0]!;
}
