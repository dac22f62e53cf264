/**
 * A ~1 Mbit/s 30 fps VP8 clip for the relay benchmark (the shipped clips are ~300 kbit/s). With ffmpeg: encoded at
 * run time into a temp dir (testsrc2, 640×480, libvpx CBR, a keyframe every 2 s). Without: the shipped clip with
 * each frame padded with zero bytes to the target size (the relay forwards bytes, it does not decode them; keyframe
 * detection reads only the first bytes).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readIvf } from '../../devices/camera/media/containers.ts';
import { createVideoPacketizer, DEFAULT_CLIPS } from '../../devices/camera/media/video-source.ts';

export interface Clip {
  path: string;
  kbps: number;
  fps: number;
  /** RTP packets per second the clip makes (VP8 packetized at MAX_RTP_PAYLOAD_BYTES). */
  packetsPerSecond: number;
  method: string;
  /** Removes the temp dir. */
  remove(): Promise<void>;
}

function kbpsOf(path: string): { kbps: number; fps: number; frames: number; packetsPerSecond: number } {
  const clip = readIvf(readFileSync(path));
  const bytes = clip.frames.reduce((a, f) => a + f.data.length, 0);
  const packetizer = createVideoPacketizer({ codec: 'VP8' });
  const packets = clip.frames.reduce((a, f) => a + packetizer.packetize(f, 0).length, 0);
  return { kbps: (bytes * 8 * clip.fps) / clip.frames.length / 1000, fps: clip.fps, frames: clip.frames.length, packetsPerSecond: (packets * clip.fps) / clip.frames.length };
}

export async function makeClip(targetKbps = 1000, frames = 150): Promise<Clip> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-bench-clip-'));
  const path = join(dir, `testsrc2-${targetKbps}k.vp8.ivf`);
  const remove = () => rm(dir, { recursive: true, force: true });
  const ffmpeg = spawnSync(
    'ffmpeg',
    [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=640x480:rate=30', '-frames:v', String(frames), '-pix_fmt', 'yuv420p',
      '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-error-resilient', '1',
      '-b:v', `${targetKbps}k`, '-minrate', `${targetKbps}k`, '-maxrate', `${targetKbps}k`, '-bufsize', `${targetKbps}k`,
      '-g', '60', '-keyint_min', '60', '-auto-alt-ref', '0', '-lag-in-frames', '0',
      '-f', 'ivf', path,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 },
  );
  if (ffmpeg.status === 0) {
    const { kbps, fps, packetsPerSecond } = kbpsOf(path);
    if (kbps > targetKbps * 0.5) return { path, kbps, fps, packetsPerSecond, remove, method: 'encoded with ffmpeg (testsrc2 640×480, libvpx CBR, keyframe every 60 frames)' };
  }
  // Fallback: pad the shipped clip's frames.
  const shipped = fileURLToPath(DEFAULT_CLIPS.VP8);
  const bytes = readFileSync(shipped);
  const source = kbpsOf(shipped);
  const factor = targetKbps / source.kbps;
  const header = Buffer.from(bytes.subarray(0, 32));
  const clip = readIvf(bytes);
  const parts: Buffer[] = [header];
  clip.frames.forEach((f, i) => {
    const size = Math.max(f.data.length, Math.round(f.data.length * factor));
    const h = Buffer.alloc(12);
    h.writeUInt32LE(size, 0);
    h.writeBigUInt64LE(BigInt(i), 4);
    const data = Buffer.alloc(size);
    data.set(f.data);
    parts.push(h, data);
  });
  writeFileSync(path, Buffer.concat(parts));
  const { kbps, fps, packetsPerSecond } = kbpsOf(path);
  return { path, kbps, fps, packetsPerSecond, remove, method: `shipped clip with frames zero-padded ×${factor.toFixed(2)} (ffmpeg ${ffmpeg.error ? 'not found' : 'failed'})` };
}
