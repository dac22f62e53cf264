/**
 * Retention of recordings under one directory (one sub-directory per device): files older than `maxAgeMs` go first,
 * then the oldest until the total is at most `maxBytes`. 0 turns a limit off.
 *
 * Part files count: they are on the disk like the rest (a camera's open file, what a crash left, what another node
 * sharing the directory writes). The caller says which of them must stay (`keep`: files being written); those count
 * towards the total but are never deleted.
 */
import { rm } from 'node:fs/promises';
import { listStored, type StoredFile } from './store.ts';

export interface RetentionLimits {
  maxAgeMs: number;
  maxBytes: number;
}

/** Deletes what the limits say must go; returns the deleted files. */
export async function enforceRetention(
  dir: string,
  limits: RetentionLimits,
  keep: (file: StoredFile) => boolean = () => false,
  now = Date.now(),
): Promise<StoredFile[]> {
  const files = await listStored(dir);
  const doomed: StoredFile[] = [];
  let total = files.reduce((sum, f) => sum + f.bytes, 0);
  for (const file of files) {
    const tooOld = limits.maxAgeMs > 0 && now - file.modified.getTime() > limits.maxAgeMs;
    const overSize = limits.maxBytes > 0 && total > limits.maxBytes;
    if ((!tooOld && !overSize) || keep(file)) continue;
    doomed.push(file);
    total -= file.bytes;
  }
  for (const file of doomed) await rm(file.path, { force: true });
  return doomed;
}
