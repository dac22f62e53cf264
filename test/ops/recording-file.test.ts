/**
 * The recording pipeline without a network: the simulated camera's clips packetized to RTP exactly as they are sent,
 * reassembled, muxed, and read back by ffprobe (duration, codecs, frame counts) and decoded by ffmpeg; plus the
 * parts with rules of their own (loss handling, G.711 tables, RTP clock wrap, retention).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { encodeG711, aLawToLinear, muLawToLinear } from '../../devices/camera/media/g711.ts';
import { createVideoPacketizer, loadVideoClip, type VideoCodec } from '../../devices/camera/media/video-source.ts';
import { RtpClock, VideoAssembler, type VideoFrame } from '../../src/recording/frames.ts';
import { g711ToPcm16le } from '../../src/recording/g711.ts';
import { avcDecoderConfiguration, nalType, splitAnnexB, spsPictureSize, toLengthPrefixed } from '../../src/recording/h264.ts';
import { MatroskaWriter, type TrackSpec } from '../../src/recording/matroska-writer.ts';
import { enforceRetention } from '../../src/recording/retention.ts';
import { listRecordings, listStored } from '../../src/recording/store.ts';
import { OPUS_HEAD } from '../../src/recording/session-recorder.ts';
import { decodeErrors, probe, SKIP_WITHOUT_FFPROBE } from './ffprobe.ts';

const run = promisify(execFile);

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-rec-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The clip's frames after a trip through the RTP packetizer and the recorder's assembler. */
function roundTrip(codec: VideoCodec): VideoFrame[] {
  const clip = loadVideoClip(codec);
  const packetizer = createVideoPacketizer({ codec });
  const assembler = new VideoAssembler(codec);
  const frames: VideoFrame[] = [];
  clip.frames.forEach((frame, i) => {
    for (const packet of packetizer.packetize(frame, i * 3000)) {
      const out = assembler.push(packet);
      expect(out.lost).toBeUndefined();
      if (out.frame) frames.push(out.frame);
    }
  });
  return frames;
}

/** The packets of an Ogg stream (RFC 3533): each page's segment table gives lacing values; 255 continues a packet. */
function oggPackets(data: Buffer): Buffer[] {
  const packets: Buffer[] = [];
  let pending: Buffer[] = [];
  for (let at = 0; at + 27 <= data.length; ) {
    if (data.toString('latin1', at, at + 4) !== 'OggS') throw new Error(`no Ogg page at ${at}`);
    const segments = data[at + 26]!;
    let body = at + 27 + segments;
    for (let i = 0; i < segments; i++) {
      const size = data[at + 27 + i]!;
      pending.push(data.subarray(body, body + size));
      body += size;
      if (size < 255) {
        packets.push(Buffer.concat(pending));
        pending = [];
      }
    }
    at = body;
  }
  return packets;
}

function tone(law: 'PCMU' | 'PCMA', packet: number): Buffer {
  const samples = Int16Array.from({ length: 160 }, (_, k) => Math.round(8000 * Math.sin(((packet * 160 + k) * 2 * Math.PI * 440) / 8000)));
  return g711ToPcm16le(law, encodeG711(law, samples));
}

describe.skipIf(SKIP_WITHOUT_FFPROBE)('recording files read back by ffprobe', () => {
  const cases: { codec: VideoCodec; audio: 'PCMU' | 'PCMA' | undefined; ext: string; video: string }[] = [
    { codec: 'VP8', audio: undefined, ext: 'webm', video: 'vp8' },
    { codec: 'VP8', audio: 'PCMU', ext: 'mkv', video: 'vp8' },
    { codec: 'H264', audio: 'PCMA', ext: 'mkv', video: 'h264' },
  ];
  for (const { codec, audio, ext, video } of cases) {
    it(`${codec}${audio ? ` + ${audio}` : ''}: 120 frames, 4 s, ${ext}, decodes cleanly`, async () => {
      const dir = await tempDir();
      const frames = roundTrip(codec);
      expect(frames).toHaveLength(120);
      expect(frames.filter((f) => f.keyframe)).toHaveLength(4); // the clip's GOP is 30 frames
      const tracks: TrackSpec[] = [];
      if (codec === 'VP8') tracks.push({ kind: 'video', codecId: 'V_VP8', width: 320, height: 240 });
      else {
        const nals = splitAnnexB(frames[0]!.data);
        const sps = nals.find((n) => nalType(n) === 7)!;
        const pps = nals.find((n) => nalType(n) === 8)!;
        expect(spsPictureSize(sps)).toEqual({ width: 320, height: 240 });
        tracks.push({ kind: 'video', codecId: 'V_MPEG4/ISO/AVC', codecPrivate: avcDecoderConfiguration(sps, pps), width: 320, height: 240 });
      }
      if (audio) tracks.push({ kind: 'audio', codecId: 'A_PCM/INT/LIT', sampleRate: 8000, channels: 1, bitDepth: 16 });
      const path = join(dir, `clip.${ext}`);
      const writer = new MatroskaWriter(path, ext === 'webm' ? 'webm' : 'matroska', tracks);
      let packet = 0;
      frames.forEach((frame, i) => {
        const t = (i * 1000) / 30;
        for (; audio && packet * 20 <= t; packet++) writer.write(1, packet * 20, true, tone(audio, packet), 20);
        writer.write(0, t, frame.keyframe, codec === 'H264' ? toLengthPrefixed(splitAnnexB(frame.data)) : frame.data);
      });
      expect(await readdir(dir)).toEqual([`clip.${ext}.part`]); // not finalised yet
      const summary = await writer.finish();
      expect(await readdir(dir)).toEqual([`clip.${ext}`]);
      expect(summary).toMatchObject({ path, videoFrames: 120, audioFrames: audio ? packet : 0 });

      const info = await probe(path);
      expect(info.formatName).toBe('matroska,webm');
      expect(info.durationS).toBeCloseTo(4, 1);
      expect(info.startsOnKeyframe).toBe(true);
      expect(info.streams[0]).toMatchObject({ type: 'video', codec: video, frames: 120, width: 320, height: 240 });
      if (audio) expect(info.streams[1]).toMatchObject({ type: 'audio', codec: 'pcm_s16le', frames: packet, sampleRate: 8000, channels: 1 });
      expect(await decodeErrors(path)).toBe('');
    });
  }

  it('VP8 + Opus: WebM that browsers can play, with both tracks whole', async () => {
    const dir = await tempDir();
    // 4 s of Opus, 20 ms frames, encoded by ffmpeg; the recorder stores Opus packets as they come in RTP.
    const ogg = join(dir, 'tone.ogg');
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=440:duration=4', '-c:a', 'libopus', '-frame_duration', '20', ogg]);
    const packets = oggPackets(await readFile(ogg)).slice(2); // OpusHead and OpusTags are not audio
    expect(packets.length).toBeGreaterThanOrEqual(199);
    const path = join(dir, 'clip.webm');
    const writer = new MatroskaWriter(path, 'webm', [
      { kind: 'video', codecId: 'V_VP8', width: 320, height: 240 },
      { kind: 'audio', codecId: 'A_OPUS', codecPrivate: OPUS_HEAD, sampleRate: 48_000, channels: 2, seekPreRollNs: 80_000_000 },
    ]);
    const frames = roundTrip('VP8');
    let packet = 0;
    frames.forEach((frame, i) => {
      const t = (i * 1000) / 30;
      for (; packet < packets.length && packet * 20 <= t; packet++) writer.write(1, packet * 20, true, packets[packet]!, 20);
      writer.write(0, t, frame.keyframe, frame.data);
    });
    await writer.finish();
    const info = await probe(path);
    expect(info.streams.map((s) => [s.codec, s.frames])).toEqual([
      ['vp8', 120],
      ['opus', packet],
    ]);
    expect(info.durationS).toBeCloseTo(4, 1);
    expect(await decodeErrors(path)).toBe('');
  });

  it('a file that never got a frame is removed, not left behind', async () => {
    const dir = await tempDir();
    const writer = new MatroskaWriter(join(dir, 'empty.webm'), 'webm', [{ kind: 'video', codecId: 'V_VP8' }]);
    expect(await writer.finish()).toBeUndefined();
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('recording parts', () => {
  it('after a lost packet, frames are dropped until the next keyframe, and the loss is reported once per gap', () => {
    const clip = loadVideoClip('VP8');
    const packetizer = createVideoPacketizer({ codec: 'VP8' });
    const assembler = new VideoAssembler('VP8');
    const kept: number[] = [];
    let losses = 0;
    clip.frames.forEach((frame, i) => {
      packetizer.packetize(frame, i * 3000).forEach((packet, n) => {
        if (i === 10 && n === 0) return; // the first packet of frame 10 is lost
        const out = assembler.push(packet);
        if (out.lost) losses++;
        if (out.frame) kept.push(i);
      });
    });
    expect(losses).toBe(1);
    // Frames 0–9 whole, 10–29 depend on the lost picture, 30 is the next keyframe.
    expect(kept).toEqual([...Array.from({ length: 10 }, (_, i) => i), ...Array.from({ length: 90 }, (_, i) => 30 + i)]);
  });

  it('G.711 decodes to the same samples as the reference tables, for all 256 codes', () => {
    const codes = Uint8Array.from({ length: 256 }, (_, i) => i);
    const mu = g711ToPcm16le('PCMU', codes);
    const a = g711ToPcm16le('PCMA', codes);
    for (let i = 0; i < 256; i++) {
      expect(mu.readInt16LE(i * 2), `μ-law ${i}`).toBe(muLawToLinear(i));
      expect(a.readInt16LE(i * 2), `A-law ${i}`).toBe(aLawToLinear(i));
    }
  });

  it('RTP time unwraps across 2^32 and follows the first arrival', () => {
    const clock = new RtpClock(90_000);
    expect(clock.toMs(2 ** 32 - 9000, 1000)).toBe(1000);
    expect(clock.toMs(0, 1050)).toBeCloseTo(1100, 6); // 9000 ticks later = 100 ms, whatever the arrival jitter
    expect(clock.toMs(90_000, 1200)).toBeCloseTo(2100, 6);
  });

  it('retention deletes files past the age limit, then the oldest until under the size limit; part files count (issue 11 #11)', async () => {
    const dir = await tempDir();
    const now = Date.now();
    const make = async (device: string, name: string, bytes: number, ageMs: number) => {
      await mkdir(join(dir, device), { recursive: true });
      await writeFile(join(dir, device, name), Buffer.alloc(bytes));
      const t = new Date(now - ageMs);
      await utimes(join(dir, device, name), t, t);
    };
    const open = 'cam2-20261206T000000000Z.mkv.node-a.part'; // being written: counts, stays
    const stray = 'cam1-20261205T000000000Z.webm.node-a.part'; // left by a crash and not recoverable: counts, goes
    await make('cam1', stray, 100, 20 * 3_600_000);
    await make('cam1', 'a.webm', 100, 10 * 3_600_000); // too old
    await make('cam1', 'b.mkv', 300, 3 * 3_600_000);
    await make('cam2', 'c.webm', 300, 2 * 3_600_000);
    await make('cam2', 'd.mkv', 300, 1 * 3_600_000);
    await make('cam2', open, 400, 0);
    // 1 500 bytes: the stray part and a.webm are too old; then b.mkv goes, which leaves 1 000 (the open part included).
    const deleted = await enforceRetention(dir, { maxAgeMs: 5 * 3_600_000, maxBytes: 1000 }, (f) => f.name === open, now);
    expect(deleted.map((f) => f.name)).toEqual([stray, 'a.webm', 'b.mkv']);
    expect((await listStored(dir)).map((f) => f.name)).toEqual(['c.webm', 'd.mkv', open]);
    expect((await listRecordings(dir)).map((f) => f.name)).toEqual(['c.webm', 'd.mkv']);
    // Over the limit with only the open part left to delete: it stays.
    expect((await enforceRetention(dir, { maxAgeMs: 0, maxBytes: 10 }, (f) => f.name === open, now)).map((f) => f.name)).toEqual(['c.webm', 'd.mkv']);
    expect(await readdir(join(dir, 'cam2'))).toEqual([open]);
    expect(await enforceRetention(dir, { maxAgeMs: 0, maxBytes: 0 }, () => false, now)).toEqual([]);
  });
});
