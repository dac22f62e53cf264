/**
 * Recording cameras that do not play along (issue 11, finding 11: one keyframe, then only delta frames, deaf to
 * keyframe requests, wrote one 45 MB `.part` in 30 s with 2 s segments and a 5 MB limit). On a real bridge with a
 * werift camera: files rotate on time and on size whatever the frame type, the retention limit holds with the open
 * file counted, a file that starts between keyframes plays from its first keyframe (and whole after the file before
 * it), and recordings are private to the bridge's user (finding 16).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadVideoClip } from '../../devices/camera/media/video-source.ts';
import type { Session } from '../../src/answerer/session.ts';
import { segmentBytesFor } from '../../src/recording/recorder.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { until, waitFor } from '../helpers/wait.ts';
import { startStreamingCamera, writeVp8Clip, type StreamingCamera, type StreamingCameraOptions } from './camera.ts';
import { decodeErrors, probe, SKIP_WITHOUT_FFPROBE } from './ffprobe.ts';
import { untilReceived } from './prometheus.ts';

const run = promisify(execFile);

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-rec-limits-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** 10 s of VP8 with one keyframe: the shipped clip's first frame, then its delta frames over and over, each padded. */
async function oneKeyframeClip(padBytes: number): Promise<string> {
  const clip = loadVideoClip('VP8');
  const deltas = clip.frames.filter((f) => !f.keyframe).map((f) => Buffer.concat([f.data, randomBytes(padBytes)]));
  const frames = [clip.frames[0]!.data, ...Array.from({ length: 299 }, (_, i) => deltas[i % deltas.length]!)];
  const path = join(await tempDir(), 'one-keyframe.ivf');
  await writeVp8Clip(path, frames);
  return path;
}

/** 9 s of VP8 from ffmpeg (libvpx), a keyframe every `gop` frames and nowhere else (as make-clips.sh does it). */
async function fixedGopClip(gop: number): Promise<string> {
  const path = join(await tempDir(), `gop${gop}.ivf`);
  await run('ffmpeg', [
    ...['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=30', '-frames:v', '270', '-pix_fmt', 'yuv420p'],
    ...['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-error-resilient', '1', '-b:v', '300k'],
    ...['-g', String(gop), '-keyint_min', String(gop), '-auto-alt-ref', '0', '-lag-in-frames', '0', '-f', 'ivf', path],
  ]);
  return path;
}

async function stream(tb: TestBridge, options: Partial<StreamingCameraOptions>) {
  const secret = await tb.bridge.credentials.add('cam1', 'device', { replace: true });
  const opened = waitFor<[Session]>(tb.bridge.answerer, 'session');
  const camera = await startStreamingCamera({ url: tb.bridge.mqttUrl, id: 'cam1', secret, ...options });
  const [session] = await opened;
  return { camera, session };
}

async function endSession(tb: TestBridge, session: Session, camera: { stop(): Promise<void> }): Promise<void> {
  const closed = waitFor(session, 'closed');
  await camera.stop();
  session.close('normal');
  await closed;
  await tb.bridge.recorder.close();
}

/**
 * Lets the camera send `frames` frames (30 a second), then waits until the bridge has received every video packet
 * sent. File boundaries follow the media's own clock (RTP time), so what is asserted below depends on how much media
 * went through, not on how fast a loaded machine moved it; but a session ended while its media worker is still behind
 * on its socket rightly records only what was read.
 */
async function sendFrames(tb: TestBridge, camera: StreamingCamera, frames: number): Promise<void> {
  await until(() => camera.video.framesSent >= frames, 120_000, `${frames} frames sent`);
  await untilReceived(tb.bridge.httpPort, camera.video.packetsSent);
}

/** Every file in `dir`, part files included (synchronous: sampled while the bridge writes). */
function sizes(dir: string): { name: string; bytes: number }[] {
  const names = existsSync(dir) ? readdirSync(dir) : [];
  const out: { name: string; bytes: number }[] = [];
  for (const name of names) {
    const info = statSync(join(dir, name), { throwIfNoEntry: false }); // retention may delete it meanwhile
    if (info) out.push({ name, bytes: info.size });
  }
  return out;
}

describe.skipIf(SKIP_WITHOUT_FFPROBE)('recording a camera that sends no keyframes (issue 11 #11)', () => {
  it('files rotate every segment all the same; the later ones start on a delta frame; files 0600 in 0700 folders', async () => {
    const tb = await startBridge({ record: 'cam1', recordSegmentMs: 1000 });
    const { camera, session } = await stream(tb, { clip: await oneKeyframeClip(0), ignoreKeyframeRequests: true });
    await sendFrames(tb, camera, 180); // 6 s; before: one file for as long as it streamed
    await endSession(tb, session, camera);

    const root = join(tb.dataDir, 'recordings');
    const dir = join(root, 'cam1');
    const names = (await readdir(dir)).sort();
    expect(names.every((n) => /^cam1-\d{8}T\d{9}Z\.webm$/.test(n)), names.join()).toBe(true); // all finalised
    expect(names.length).toBeGreaterThanOrEqual(3);
    let seconds = 0;
    for (const [i, name] of names.entries()) {
      const info = await probe(join(dir, name));
      seconds += info.durationS;
      expect(info.streams[0], name).toMatchObject({ codec: 'vp8', width: 320, height: 240 }); // size from the last keyframe
      expect(info.startsOnKeyframe, name).toBe(i === 0);
      // A segment, then at most one more waiting for the keyframe that never comes.
      if (i < names.length - 1) expect(info.durationS, name).toBeLessThan(2.1);
    }
    expect(seconds).toBeGreaterThan(3.5);
    expect(camera.keyframeRequests()).toBeGreaterThanOrEqual(2);
    // Private to the bridge's user, like identities.json (finding 16: they were 0644 in 0755 folders).
    expect((await stat(root)).mode & 0o777).toBe(0o700);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const name of names) expect((await stat(join(dir, name))).mode & 0o777, name).toBe(0o600);
  });

  it('a fast one stays within recordMaxMegabytes, its open file counted: files close on size too', async () => {
    const limit = 1_000_000;
    const tb = await startBridge({ record: 'cam1', recordSegmentMs: 60_000, recordMaxMegabytes: 1 });
    // ~24 KB frames at 30 fps: ~0.7 MB/s, and a one-minute segment that would hold ~43 MB.
    const { camera, session } = await stream(tb, { clip: await oneKeyframeClip(24_000), ignoreKeyframeRequests: true });
    const dir = join(tb.dataDir, 'recordings', 'cam1');
    const fileMax = segmentBytesFor(limit) + 64 * 1024; // a file closes on the first frame past the size
    let peak = 0;
    await until(
      () => {
        const total = sizes(dir).reduce((sum, f) => sum + f.bytes, 0);
        peak = Math.max(peak, total);
        // What the camera sent is ahead of what the bridge has written (under load by seconds): the sweep's first
        // deletion is the bridge's own sign that it has recorded past the limit.
        return camera.video.bytesSent > 3 * limit && tb.logs.some((l) => l.msg === 'recording deleted by retention');
      },
      120_000,
      '3 MB streamed and a file deleted by retention',
    );
    // At any time: the limit, the open file, and one just closed that the sweep has yet to see.
    expect(peak).toBeLessThanOrEqual(limit + 2 * fileMax);
    const during = sizes(dir);
    expect(during.reduce((sum, f) => sum + f.bytes, 0)).toBeLessThanOrEqual(limit + 2 * fileMax);
    await endSession(tb, session, camera);

    const after = sizes(dir);
    expect(after.every((f) => f.name.endsWith('.webm')), JSON.stringify(after)).toBe(true);
    expect(after.reduce((sum, f) => sum + f.bytes, 0)).toBeLessThanOrEqual(limit);
    for (const f of after) expect(f.bytes, f.name).toBeLessThanOrEqual(fileMax);
  });

  it('a file that starts between keyframes plays from its first keyframe, and whole after the file before it', { timeout: 60_000 }, async () => {
    // A fixed 3 s GOP (as some firmware has) and 1 s segments: a deaf camera cannot make a keyframe come sooner.
    const tb = await startBridge({ record: 'cam1', recordSegmentMs: 1000 });
    const { camera, session } = await stream(tb, { clip: await fixedGopClip(90), ignoreKeyframeRequests: true });
    await sendFrames(tb, camera, 150); // files from 0 s (keyframe), 2 s (delta; keyframe at 3 s), 4 s
    await endSession(tb, session, camera);

    const dir = join(tb.dataDir, 'recordings', 'cam1');
    const names = (await readdir(dir)).sort();
    const infos = await Promise.all(names.map((n) => probe(join(dir, n))));
    const between = names.findIndex((_, i) => i > 0 && !infos[i]!.startsOnKeyframe);
    expect(between, 'a file that starts between keyframes').toBeGreaterThan(0);
    const path = join(dir, names[between]!);
    // Its first cue is its first keyframe, where a player starts; ffmpeg decodes every frame from there on.
    const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'csv=p=0', path]);
    const packets = stdout.trim().split('\n').map((l) => ({ time: Number(l.split(',')[0]), key: l.split(',')[1]!.startsWith('K') }));
    const firstKey = packets.findIndex((p) => p.key);
    expect(firstKey).toBeGreaterThan(0);
    const decoded = await run('ffprobe', ['-v', 'quiet', '-select_streams', 'v:0', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0', path]);
    const frames = decoded.stdout.trim().split('\n');
    expect(frames[0]).toBe('1'); // the frames before the keyframe are skipped, not shown as garbage
    expect(frames.length).toBe(packets.length - firstKey);
    // After the file before it (which holds the pictures its first frames refer to), every frame decodes.
    const list = join(await tempDir(), 'list.txt');
    await writeFile(list, `file '${join(dir, names[between - 1]!)}'\nfile '${path}'\n`);
    const joined = join(await tempDir(), 'joined.webm');
    await run('ffmpeg', ['-v', 'error', '-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', joined]);
    expect(await decodeErrors(joined)).toBe('');
    expect((await probe(joined)).streams[0]!.frames).toBe(infos[between - 1]!.streams[0]!.frames + packets.length);
  });
});
