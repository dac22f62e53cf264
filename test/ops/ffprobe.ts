/**
 * Reads a media file back with ffprobe (Debian's ffmpeg; .ci/run installs it when missing). Without ffprobe the
 * tests that need it are skipped on a developer machine and fail under CI=true.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

export const HAVE_FFPROBE = spawnSync('ffprobe', ['-version'], { stdio: 'ignore' }).status === 0;
/** describe.skipIf(SKIP_WITHOUT_FFPROBE): skip only outside CI. */
export const SKIP_WITHOUT_FFPROBE = !HAVE_FFPROBE && process.env.CI !== 'true';

export interface Probe {
  formatName: string;
  durationS: number;
  streams: { type: string; codec: string; frames: number; width?: number; height?: number; sampleRate?: number; channels?: number }[];
  /** Whether the first video frame is a keyframe. */
  startsOnKeyframe: boolean;
}

const run = promisify(execFile);

/** Counts frames by decoding the whole file (-count_frames), so a file that does not decode fails here. */
export async function probe(path: string): Promise<Probe> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_format', '-show_streams', '-of', 'json', path]);
  const info = JSON.parse(stdout) as {
    format: { format_name: string; duration: string };
    streams: { codec_type: string; codec_name: string; nb_read_frames: string; width?: number; height?: number; sample_rate?: string; channels?: number }[];
  };
  const first = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-read_intervals', '%+#1', '-show_entries', 'frame=key_frame', '-of', 'csv=p=0', path]);
  return {
    formatName: info.format.format_name,
    durationS: Number(info.format.duration),
    streams: info.streams.map((s) => ({
      type: s.codec_type,
      codec: s.codec_name,
      frames: Number(s.nb_read_frames),
      ...(s.width !== undefined && { width: s.width, height: s.height }),
      ...(s.sample_rate !== undefined && { sampleRate: Number(s.sample_rate), channels: s.channels }),
    })),
    startsOnKeyframe: first.stdout.trim().split('\n')[0]?.startsWith('1') ?? false,
  };
}

/** Decodes every frame; resolves with ffmpeg's error output (empty when the file decodes cleanly). */
export async function decodeErrors(path: string): Promise<string> {
  const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', path, '-f', 'null', '-']);
  return stderr.trim();
}
