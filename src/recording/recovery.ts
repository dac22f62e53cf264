/**
 * Recovery of the part files a crash left (SIGKILL, power loss, OOM): each is cut after its last whole cluster and
 * finalised as MatroskaWriter.finish() would have done it (finalisingWrites: a cue at every cluster that starts on a
 * keyframe, the duration, the segment size), then renamed. From then on it is listed, downloadable, seekable and
 * counted like any finished file.
 *
 * What a crash loses: the cluster being gathered in memory (at most one GOP, or 5 s). A part file without a single
 * whole cluster holds no frame and is deleted; one that does not parse as a file of ours is left as it is (retention
 * counts it, and deletes it in turn).
 */
import { link, open, rm, unlink } from 'node:fs/promises';
import { finalisingWrites, type Cue } from './matroska-writer.ts';
import { HEADER_READ_BYTES, parseHeader, readBlocks, readCluster, type ClusterInfo } from './matroska-reader.ts';

export type Recovery =
  | { outcome: 'recovered'; path: string; bytes: number; durationMs: number; clusters: number; lostBytes: number }
  | { outcome: 'empty' }
  | { outcome: 'unreadable'; reason: string };

/** Finalises `partPath` as `finalPath` (never over an existing file). */
export async function recoverPart(partPath: string, finalPath: string): Promise<Recovery> {
  const file = await open(partPath, 'r+');
  let result: Recovery;
  try {
    const size = (await file.stat()).size;
    const { buffer } = await file.read({ buffer: Buffer.alloc(Math.min(size, HEADER_READ_BYTES)), position: 0 });
    const header = parseHeader(buffer);
    if (header?.layout === undefined) return { outcome: 'unreadable', reason: 'not a Matroska file written by tali' };
    const video = [...header.tracks].find(([, kind]) => kind === 'video')?.[0];
    const cues: Cue[] = [];
    let last: ClusterInfo | undefined;
    for (let at = header.bodyStart; at < size; ) {
      const cluster = await readCluster(file, at, size);
      if (cluster === undefined) break; // cut short by the crash, or the cues of an interrupted finish()
      // The writer's rule: a cue where a cluster starts on a video keyframe; every cluster of an audio-only file.
      const first = cluster.first;
      if (video === undefined) cues.push({ timeMs: cluster.timeMs, track: 1, clusterOffset: cluster.offset });
      else if (first?.track === video && first.keyframe) cues.push({ timeMs: cluster.timeMs, track: video, clusterOffset: cluster.offset });
      last = cluster;
      at = cluster.end;
    }
    if (last === undefined) {
      result = { outcome: 'empty' };
    } else {
      const end = last.end;
      await file.truncate(end);
      const endMs = endOf(await readBlocks(file, last));
      for (const { position, data } of finalisingWrites(header.layout, end, cues, endMs)) await file.write(data, 0, data.length, position);
      await file.sync();
      const bytes = (await file.stat()).size;
      result = { outcome: 'recovered', path: finalPath, bytes, durationMs: endMs, clusters: cues.length, lostBytes: size - end };
    }
  } finally {
    await file.close();
  }
  if (result.outcome === 'empty') await rm(partPath, { force: true });
  if (result.outcome === 'recovered') {
    await link(partPath, finalPath); // fails with EEXIST rather than replace a file
    await unlink(partPath);
  }
  return result;
}

/** The file's end: the last block of each track plus that track's last frame interval; the latest of them. */
function endOf(blocks: { track: number; timeMs: number }[]): number {
  const last = new Map<number, { time: number; interval: number }>();
  for (const { track, timeMs } of blocks) {
    const before = last.get(track);
    last.set(track, { time: timeMs, interval: before && timeMs > before.time ? timeMs - before.time : (before?.interval ?? 0) });
  }
  return Math.max(0, ...[...last.values()].map((t) => t.time + t.interval));
}
