/**
 * Retention of finished recordings under one directory (one sub-directory per device): files older than `maxAgeMs`
 * go first, then the oldest until the total is at most `maxBytes`. Files still being written (".part") are never
 * touched. 0 turns a limit off.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface RetentionLimits {
  maxAgeMs: number;
  maxBytes: number;
}

export interface RecordingFile {
  deviceId: string;
  name: string;
  path: string;
  bytes: number;
  /** Last write: when the file was finalised. */
  modified: Date;
}

export const RECORDING_EXTENSIONS = ['.webm', '.mkv'];

/** Finished recordings, oldest first. */
export async function listRecordings(dir: string, deviceId?: string): Promise<RecordingFile[]> {
  const devices = deviceId === undefined ? await readdir(dir).catch(() => [] as string[]) : [deviceId];
  const files: RecordingFile[] = [];
  for (const device of devices) {
    const names = await readdir(join(dir, device)).catch(() => [] as string[]);
    for (const name of names) {
      if (!RECORDING_EXTENSIONS.some((ext) => name.endsWith(ext))) continue;
      const path = join(dir, device, name);
      const info = await stat(path).catch(() => undefined);
      if (info?.isFile()) files.push({ deviceId: device, name, path, bytes: info.size, modified: info.mtime });
    }
  }
  return files.sort((a, b) => a.modified.getTime() - b.modified.getTime() || a.path.localeCompare(b.path));
}

/** Deletes what the limits say must go; returns the deleted files. */
export async function enforceRetention(dir: string, limits: RetentionLimits, now = Date.now()): Promise<RecordingFile[]> {
  const files = await listRecordings(dir);
  const doomed: RecordingFile[] = [];
  let total = files.reduce((sum, f) => sum + f.bytes, 0);
  for (const file of files) {
    const tooOld = limits.maxAgeMs > 0 && now - file.modified.getTime() > limits.maxAgeMs;
    const overSize = limits.maxBytes > 0 && total > limits.maxBytes;
    if (!tooOld && !overSize) continue;
    doomed.push(file);
    total -= file.bytes;
  }
  for (const file of doomed) await rm(file.path, { force: true });
  return doomed;
}
