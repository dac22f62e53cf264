/**
 * Summarises a V8 .cpuprofile (what `node --cpu-prof` writes): self time per function and per module, so a profile
 * of the bridge can be read as a table. `node bench/lib/cpuprofile.ts FILE [N]` prints the top N.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** Self time per function ("name file:line"), ms, largest first. */
  functions: { name: string; ms: number; share: number }[];
  /** Self time per module (file), ms. */
  modules: { name: string; ms: number; share: number }[];
  /** Inclusive time of functions whose name matches, ms (e.g. everything under decrypt). */
  inclusive(match: RegExp): number;
}

export function summariseProfile(text: string): ProfileSummary {
  const profile = JSON.parse(text) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    selfMs.set(id, (selfMs.get(id) ?? 0) + (deltas[i] ?? 0) / 1000);
  }
  const totalMs = [...selfMs.values()].reduce((a, b) => a + b, 0);
  const shortUrl = (url: string) => url.replace(/^file:\/\/.*?\/node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench|devices)\//, '$1/');
  const group = (key: (n: ProfileNode) => string) => {
    const out = new Map<string, number>();
    for (const [id, ms] of selfMs) {
      const node = byId.get(id);
      if (node) out.set(key(node), (out.get(key(node)) ?? 0) + ms);
    }
    return [...out].map(([name, ms]) => ({ name, ms, share: ms / totalMs })).sort((a, b) => b.ms - a.ms);
  };
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  return {
    totalMs,
    functions: group((n) => `${n.callFrame.functionName || '(anonymous)'} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`),
    modules: group((n) => shortUrl(n.callFrame.url) || n.callFrame.functionName),
    inclusive(match: RegExp): number {
      let ms = 0;
      for (const [id, self] of selfMs) {
        for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
          const node = byId.get(at);
          if (node && match.test(node.callFrame.functionName)) {
            ms += self;
            break;
          }
        }
      }
      return ms;
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const summary = summariseProfile(readFileSync(process.argv[2] as string, 'utf8'));
  const n = Number(process.argv[3] ?? 40);
  console.log(`total ${summary.totalMs.toFixed(0)} ms sampled`);
  for (const f of summary.functions.slice(0, n)) console.log(`${f.ms.toFixed(0).padStart(7)} ms ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}`);
  console.log('--- modules');
  for (const f of summary.modules.slice(0, 15)) console.log(`${f.ms.toFixed(0).padStart(7)} ms ${(f.share * 100).toFixed(1).padStart(5)} %  ${f.name}`);
}
