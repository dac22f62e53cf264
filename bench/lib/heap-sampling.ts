/**
 * Heap bytes allocated by a piece of work, garbage included: V8's sampling heap profiler with the objects that minor
 * and major collections freed kept in the profile (`includeObjectsCollectedByMinorGC/MajorGC`), so what a loop leaves
 * for the GC shows up where it was allocated. A sample stands for `samplingInterval` bytes on average (Poisson
 * sampling): the totals are estimates, good to a few % over many thousands of samples.
 *
 * JavaScript heap only: the backing store of a Buffer bigger than Node's pool slice (off-heap `ArrayBuffer`) counts
 * its wrapper objects here and its bytes in `process.memoryUsage().arrayBuffers`, not here.
 */
import { Session } from 'node:inspector/promises';

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

export interface HeapSample {
  /** Estimated heap bytes allocated during the work. */
  bytes: number;
  /** Allocation sites by self size, largest first: "function file:line". */
  sites: { site: string; bytes: number }[];
  /** The raw profile (what Chrome DevTools opens as a .heapprofile). */
  profile: { head: SamplingNode };
}

/** Runs `work` under the sampling heap profiler (one session, connected for that time only). */
export async function sampleHeap(work: () => Promise<void> | void, samplingInterval = 256): Promise<HeapSample> {
  const session = new Session();
  session.connect();
  try {
    await session.post('HeapProfiler.enable');
    await session.post('HeapProfiler.startSampling', {
      samplingInterval,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await work();
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SamplingNode } };
    const bySite = new Map<string, number>();
    let bytes = 0;
    const walk = (node: SamplingNode) => {
      if (node.selfSize > 0) {
        const { functionName, url, lineNumber } = node.callFrame;
        const site = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${lineNumber + 1}`;
        bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
        bytes += node.selfSize;
      }
      for (const child of node.children) walk(child);
    };
    walk(profile.head);
    const sites = [...bySite].map(([site, b]) => ({ site, bytes: b })).sort((a, b) => b.bytes - a.bytes);
    return { bytes, sites, profile };
  } finally {
    await session.post('HeapProfiler.disable').catch(() => {});
    session.disconnect();
  }
}
