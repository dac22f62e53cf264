/**
 * What the recordings directory holds, one sub-directory per device, private to the bridge's user (0700, files 0600):
 *
 *   {dir}/{deviceId}/{deviceId}-{YYYYMMDDTHHMMSSmmmZ}.webm|.mkv               finished (named by its start, UTC)
 *   {dir}/{deviceId}/{deviceId}-{YYYYMMDDTHHMMSSmmmZ}.webm|.mkv.{bridgeId}.part   being written by that bridge, or
 *                                                                               left by its crash (older versions
 *                                                                               wrote ".part" alone)
 *
 * The bridge ID in a part file's name says whose it is: nodes of a cluster may share one data directory, and a node
 * recovers (./recovery.ts) only what it left itself.
 */
import { chmod, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const RECORDING_EXTENSIONS = ['.webm', '.mkv'] as const;
export type RecordingExtension = (typeof RECORDING_EXTENSIONS)[number];

const STAMP = /-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z\.(?:webm|mkv)$/;
const PART = /^(.+-\d{8}T\d{9}Z\.(?:webm|mkv))(?:\.([A-Za-z0-9][A-Za-z0-9._-]*))?\.part$/;

export interface StoredFile {
  deviceId: string;
  /** The file's name on disk. */
  name: string;
  path: string;
  bytes: number;
  /** Last write: when a finished file was finalised. */
  modified: Date;
  /** For a file being written, or left by a crash: its name once finished, and the bridge writing it ('' if unnamed). */
  part?: { finalName: string; owner: string };
}

/** `cam1-20261206T204512345Z.webm`: the device and the wall-clock time of the file's first frame. */
export function recordingName(deviceId: string, startedAt: Date, extension: RecordingExtension): string {
  return `${deviceId}-${startedAt.toISOString().replace(/[-:.]/g, '')}${extension}`;
}

/** The start time in a recording's name, if it has one. */
export function startOfName(name: string): Date | undefined {
  const m = STAMP.exec(name);
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, ms] = m.map(Number) as number[];
  return new Date(Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!));
}

/** A part file's finished name and owner, or undefined if `name` is not a part file. */
export function parsePartName(name: string): { finalName: string; owner: string } | undefined {
  const m = PART.exec(name);
  return m === null ? undefined : { finalName: m[1]!, owner: m[2] ?? '' };
}

/** Every recording file, finished or not, oldest first. */
export async function listStored(dir: string, deviceId?: string): Promise<StoredFile[]> {
  const devices = deviceId === undefined ? await readdir(dir).catch(() => [] as string[]) : [deviceId];
  const files: StoredFile[] = [];
  for (const device of devices) {
    const names = await readdir(join(dir, device)).catch(() => [] as string[]);
    for (const name of names) {
      const part = parsePartName(name);
      if (part === undefined && !RECORDING_EXTENSIONS.some((ext) => name.endsWith(ext))) continue;
      const path = join(dir, device, name);
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) continue;
      files.push({ deviceId: device, name, path, bytes: info.size, modified: info.mtime, ...(part && { part }) });
    }
  }
  return files.sort((a, b) => a.modified.getTime() - b.modified.getTime() || a.path.localeCompare(b.path));
}

/** Finished recordings, oldest first. */
export async function listRecordings(dir: string, deviceId?: string): Promise<StoredFile[]> {
  return (await listStored(dir, deviceId)).filter((f) => f.part === undefined);
}

/**
 * Makes the directory and its device directories private to the bridge's user (older versions left them 0755 and
 * their files 0644): then no other user reaches a recording, whatever the file's own mode.
 */
export async function makePrivate(dir: string): Promise<void> {
  const devices = await readdir(dir, { withFileTypes: true }).catch(() => []);
  await chmod(dir, 0o700).catch(() => {});
  for (const entry of devices) if (entry.isDirectory()) await chmod(join(dir, entry.name), 0o700).catch(() => {});
}
