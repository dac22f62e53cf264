/**
 * A keyframe to a JPEG, decoded by ffmpeg (Debian's package) in a child process: VP8 wrapped in a one-frame IVF
 * file, H264 as the Annex-B stream it already is. At most `maxConcurrent` decoders run at once (they share the
 * bridge's cores with the media path) and each is killed after `timeoutMs`; the rest wait in line.
 */
import { spawn } from 'node:child_process';
import type { Keyframe } from './camera-monitor.ts';

export interface JpegDecoderOptions {
  /** The ffmpeg executable: a path or a name on PATH. */
  ffmpeg: string;
  maxConcurrent?: number;
  timeoutMs?: number;
  /** Stills wider than this are scaled down (a grid tile needs no more). */
  maxWidth?: number;
}

/** ffmpeg is missing or failed: the still cannot be made (the route answers 503 and says why). */
export class DecodeError extends Error {}

export class JpegDecoder {
  readonly #options: Required<JpegDecoderOptions>;
  #running = 0;
  readonly #queue: (() => void)[] = [];
  /** Spawns so far (for tests and /metrics-style counting). */
  decodes = 0;

  constructor(options: JpegDecoderOptions) {
    this.#options = { maxConcurrent: 2, timeoutMs: 5000, maxWidth: 640, ...options };
  }

  async decode(keyframe: Keyframe): Promise<Buffer> {
    await this.#slot();
    try {
      this.decodes++;
      return await this.#run(keyframe);
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  #slot(): Promise<void> {
    if (this.#running < this.#options.maxConcurrent) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.#queue.push(() => {
        this.#running++;
        resolve();
      }),
    );
  }

  #run(keyframe: Keyframe): Promise<Buffer> {
    const { ffmpeg, timeoutMs, maxWidth } = this.#options;
    const input = keyframe.codec === 'VP8' ? ['-f', 'ivf'] : ['-f', 'h264'];
    const args = ['-hide_banner', '-loglevel', 'error', ...input, '-i', 'pipe:0', '-frames:v', '1', '-vf', `scale='min(${maxWidth},iw)':-2`, '-q:v', '5', '-f', 'image2pipe', '-c:v', 'mjpeg', 'pipe:1'];
    return new Promise((resolve, reject) => {
      const child = spawn(ffmpeg, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => void (err = (err + chunk.toString()).slice(-500)));
      child.stdin.on('error', () => {}); // ffmpeg may exit before reading everything; 'close' reports it
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new DecodeError(e.code === 'ENOENT' ? `${ffmpeg} not found: apt-get install -y ffmpeg (or set ffmpegPath)` : e.message));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const jpeg = Buffer.concat(out);
        if (code === 0 && jpeg.length > 0) resolve(jpeg);
        else reject(new DecodeError(signal ? `ffmpeg killed after ${timeoutMs} ms` : `ffmpeg failed (${code}): ${err.trim() || 'no picture'}`));
      });
      child.stdin.end(keyframe.codec === 'VP8' ? ivf(keyframe.data) : keyframe.data);
    });
  }
}

/** A one-frame IVF file: the 32-byte file header (fourcc VP80, size from the keyframe, RFC 6386 §9.1) and a frame header. */
export function ivf(frame: Buffer): Buffer {
  const header = Buffer.alloc(44);
  header.write('DKIF', 0, 'latin1');
  header.writeUInt16LE(0, 4); // version
  header.writeUInt16LE(32, 6); // header size
  header.write('VP80', 8, 'latin1');
  // A keyframe's start code 9d 01 2a follows the 3-byte frame tag; then 14-bit width and height.
  const sized = frame.length >= 10 && frame[3] === 0x9d && frame[4] === 0x01 && frame[5] === 0x2a;
  header.writeUInt16LE(sized ? frame.readUInt16LE(6) & 0x3fff : 0, 12);
  header.writeUInt16LE(sized ? frame.readUInt16LE(8) & 0x3fff : 0, 14);
  header.writeUInt32LE(30, 16); // time base: 1/30 s
  header.writeUInt32LE(1, 20);
  header.writeUInt32LE(1, 24); // one frame
  header.writeUInt32LE(frame.length, 32); // frame header: size, then a 64-bit timestamp of 0
  return Buffer.concat([header, frame]);
}
