/**
 * Start-up: how long a restart keeps the bridge away. `tali start` is spawned (bin/tali.js, loopback, ports 0, a
 * data directory that exists: a restart, not a first start) and timed from spawn to its "tali ready" line, in wall
 * time and in CPU time of the process at that moment (/proc/<pid>/stat: less sensitive to a busy machine). Then it is
 * stopped with SIGTERM (and Node writes its compile cache) before the next one starts. Variants, interleaved round by round so that they share the noise:
 *
 *   this commit                the compile cache warm: what every restart after the first is
 *   this commit, cold          NODE_DISABLE_COMPILE_CACHE=1: a first start after an install or upgrade
 *   baseline commit            the commit before the start-up work (cluster modules loaded only in cluster mode,
 *                              compile cache, werift's warm-up alongside the listeners), checked out in a temporary
 *                              git worktree that uses this checkout's node_modules
 *
 * Ratios are against the baseline. Without git history (an exported tree) the baseline row says why it is missing.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BenchTable } from './lib/report.ts';
import { fmt, fmtRatio, ratio, summarize } from './lib/stats.ts';
import { withTimeout } from './lib/util.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** main before the start-up work (issue 17, item 3). */
export const STARTUP_BASELINE = 'd38d788';

interface Variant {
  label: string;
  root: string;
  env: NodeJS.ProcessEnv;
}

interface Sample {
  wallMs: number;
  cpuMs: number;
}

/** utime + stime of a process, in ms (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s). */
async function cpuMsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function startOnce(variant: Variant, dataDir: string): Promise<Sample> {
  const args = [join(variant.root, 'bin/tali.js'), 'start', '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir];
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: variant.root, env: variant.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const ready = new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.includes('"tali ready"')) resolve(performance.now());
      });
      child.once('exit', (code) => reject(new Error(`tali start exited (${code}) before ready: ${stderr.slice(-500)}`)));
    });
    const readyAt = await withTimeout(ready, 60_000, 'tali ready');
    const cpuMs = await cpuMsOf(child.pid!);
    return { wallMs: readyAt - started, cpuMs };
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** A worktree of `commit` with this checkout's node_modules, or why there is none. */
async function baselineTree(commit: string): Promise<{ root: string; remove: () => Promise<void> } | { missing: string }> {
  const root = await mkdtemp(join(tmpdir(), 'tali-bench-baseline-'));
  try {
    execFileSync('git', ['worktree', 'add', '--detach', root, commit], { cwd: ROOT, stdio: 'ignore' });
  } catch {
    await rm(root, { recursive: true, force: true });
    return { missing: `commit ${commit} is not in this checkout's history` };
  }
  await symlink(join(ROOT, 'node_modules'), join(root, 'node_modules'));
  return {
    root,
    remove: async () => {
      execFileSync('git', ['worktree', 'remove', '--force', root], { cwd: ROOT, stdio: 'ignore' });
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** `quick`: the warm row only (no cold start, no baseline). */
export async function runStartup(options: { rounds: number; baseline?: string; quick?: boolean }): Promise<BenchTable> {
  const commit = options.quick ? undefined : (options.baseline ?? STARTUP_BASELINE);
  const tree = commit === undefined ? { missing: 'not in a quick run' } : await baselineTree(commit);
  const dataDir = await mkdtemp(join(tmpdir(), 'tali-bench-startup-'));
  // The compile cache of this run only, so that "warm" means warmed here (and ~/.cache is left alone).
  const cache = await mkdtemp(join(tmpdir(), 'tali-bench-compile-cache-'));
  const { NODE_COMPILE_CACHE: _, ...env } = process.env;
  const variants: Variant[] = [
    { label: 'this commit (compile cache warm)', root: ROOT, env: { ...env, NODE_COMPILE_CACHE: cache } },
    ...(options.quick ? [] : [{ label: 'this commit, cold (compile cache off)', root: ROOT, env: { ...env, NODE_DISABLE_COMPILE_CACHE: '1' } }]),
    ...('root' in tree ? [{ label: `baseline ${commit!}`, root: tree.root, env: { ...env, NODE_DISABLE_COMPILE_CACHE: '1' } }] : []),
  ];
  const samples = new Map<Variant, Sample[]>(variants.map((v) => [v, []]));
  try {
    // First starts: the admin identity is made, and the compile cache fills (a cold variant has nothing to fill).
    for (const variant of variants) if (variant.env.NODE_DISABLE_COMPILE_CACHE === undefined) await startOnce(variant, dataDir);
    for (let round = 0; round < options.rounds; round++) {
      for (const variant of variants) samples.get(variant)!.push(await startOnce(variant, dataDir));
    }
  } finally {
    if ('root' in tree) await tree.remove();
    await rm(dataDir, { recursive: true, force: true });
    await rm(cache, { recursive: true, force: true });
  }

  const stats = variants.map((v) => ({
    variant: v,
    wall: summarize(samples.get(v)!.map((s) => s.wallMs)),
    cpu: summarize(samples.get(v)!.map((s) => s.cpuMs)),
  }));
  const base = stats.find((s) => s.variant.label.startsWith('baseline'));
  const rows = stats.map(({ variant, wall, cpu }) => [
    variant.label,
    `${fmt(wall.p50, 0)} / ${fmt(wall.p95, 0)}`,
    `${fmt(cpu.p50, 0)} / ${fmt(cpu.p95, 0)}`,
    base ? `${fmtRatio(ratio(wall.p50, base.wall.p50))} · ${fmtRatio(ratio(cpu.p50, base.cpu.p50))}` : '–',
  ]);
  const warm = stats[0]!;
  return {
    id: 'startup',
    title: 'Start-up',
    columns: ['tali start → "tali ready"', 'wall ms p50 / p95', 'CPU ms p50 / p95', 'vs baseline (wall · CPU)'],
    rows,
    notes: [
      `${options.rounds} restarts per variant, interleaved, on an existing data directory; wall time from spawn to the ready line, CPU time of the process then. Each is stopped (SIGTERM) before the next starts.`,
      ...(options.quick ? [] : ['Cold: NODE_DISABLE_COMPILE_CACHE=1, as on the first start after an install or upgrade (bin/tali.js keeps the cache in ~/.cache/tali; this run uses its own).']),
      ...('missing' in tree ? [`No baseline row: ${tree.missing}.`] : [`Baseline ${commit!}: main before the start-up work, in a temporary git worktree with this node_modules, cache off (it had none).`]),
    ],
    bottleneck: `loading modules: ${fmt(warm.cpu.p50, 0)} ms of CPU even with the compile cache, most of it linking ~1 300 ES modules. Half of them are TypeBox's (typebox/compile: 681 modules, ~0.3 s of CPU), which the protocol's decode() compiles its validators with at import; werift and its certificate stack (@peculiar/x509, asn1: ~0.2 s) come next. Both are needed by the first offer a restarted bridge answers, so deferring them past "ready" would not shorten an outage; validators generated at build time (TypeBox's Code()) would remove the first`,
    data: Object.fromEntries(stats.map(({ variant, wall, cpu }) => [variant.label, { wall, cpu, samples: samples.get(variant) }])),
    charts: [{ title: 'Start → ready', unit: 'ms', series: stats.map(({ variant }) => ({ label: variant.label, samples: samples.get(variant)!.map((s) => s.wallMs) })) }],
  };
}
