/**
 * Start-up: how long a restart keeps the bridge away. `tali start` is spawned (bin/tali.js, loopback, ports 0, a
 * data directory that exists: a restart, not a first start) and timed from spawn to its "tali ready" line, in wall
 * time and in CPU time of the process at that moment (/proc/<pid>/stat: less sensitive to a busy machine). Then it is
 * stopped with SIGTERM (and Node writes its compile cache) before the next one starts. "tali ready" comes once every
 * media worker thread (mediaWorkers 0: one per core) has loaded tali and werift and paid werift's first use
 * (mediaWorkersPrestart, on by default since b703610): wall and CPU include those threads. Variants, interleaved round
 * by round so that they share the noise:
 *
 *   this commit                the compile cache warm: what every restart after the first is
 *   this commit, cold          NODE_DISABLE_COMPILE_CACHE=1: a first start after an install or upgrade
 *   baseline commit            the commit before the start-up work (cluster modules loaded only in cluster mode,
 *                              compile cache, werift's warm-up alongside the listeners), checked out in a temporary
 *                              git worktree that uses this checkout's node_modules
 *
 * Ratios are against the baseline. Without git history (an exported tree) the baseline row says why it is missing.
 *
 * Then "cards available after restart": a data directory whose state file (src/broker/state-db.ts) holds N device
 * cards that said online when the last run died (written straight into the file before each round, as a SIGKILL
 * leaves it; the N devices are registered), and the time from spawn until a fresh subscriber to
 * `{root}/v1/device/+/status` has all N (each read back offline, with lastSeen). The baseline has no row for it: its
 * restarted bridge had no card until each device reconnected.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { StateDb } from '../src/broker/state-db.ts';
import { connectMqtt } from '../src/mqtt/connect.ts';
import { CredentialStore } from '../src/security/credentials.ts';
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

/**
 * Spawns `tali start`, resolves with wall and CPU time at the ready line, or, with `cards`, once a fresh subscriber
 * has that many device cards; stops it with SIGTERM.
 */
async function startOnce(variant: Variant, dataDir: string, cards?: { count: number; user: string; password: string }): Promise<Sample> {
  const args = [join(variant.root, 'bin/tali.js'), 'start', '--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir, '--bridge-id', BRIDGE_ID];
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: variant.root, env: variant.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  let readyLine = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const ready = new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line.includes('"tali ready"')) {
          readyLine = line;
          resolve(performance.now());
        }
      });
      child.once('exit', (code) => reject(new Error(`tali start exited (${code}) before ready: ${stderr.slice(-500)}`)));
    });
    const readyAt = await withTimeout(ready, 60_000, 'tali ready');
    if (cards === undefined) return { wallMs: readyAt - started, cpuMs: await cpuMsOf(child.pid!) };
    const mqttPort = (JSON.parse(readyLine) as { mqttPort: number }).mqttPort;
    const client = await connectMqtt({ target: `mqtt://127.0.0.1:${mqttPort}`, clientId: `${cards.user}:bench`, username: cards.user, password: cards.password });
    try {
      const seen = new Set<string>();
      const all = new Promise<number>((resolve) =>
        client.on('message', (topic) => {
          seen.add(topic);
          if (seen.size === cards.count) resolve(performance.now());
        }),
      );
      await client.subscribeAsync('tali/v1/device/+/status', { qos: 1 });
      const allAt = await withTimeout(all, 60_000, `${cards.count} cards`);
      return { wallMs: allAt - started, cpuMs: await cpuMsOf(child.pid!) };
    } finally {
      client.end(true);
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const BRIDGE_ID = 'bench-startup';

/**
 * Starts after a crash with `count` cards kept: a data directory with `count` registered devices whose cards the
 * state file holds as "online" (rewritten before every start, since each start marks them offline).
 */
async function cardsAfterRestart(rounds: number, count: number, env: NodeJS.ProcessEnv): Promise<Sample[]> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tali-bench-cards-'));
  try {
    const store = new CredentialStore(dataDir);
    const ids = Array.from({ length: count }, (_, i) => `cam-${String(i).padStart(4, '0')}`);
    for (const id of ids) await store.add(id, 'device');
    const password = await store.add('bench', 'viewer');
    const variant: Variant = { label: 'cards', root: ROOT, env };
    await startOnce(variant, dataDir); // the first start: admin identity, compile cache
    const samples: Sample[] = [];
    for (let round = 0; round < rounds; round++) {
      const db = StateDb.open({ file: join(dataDir, `state-${BRIDGE_ID}.db`) });
      for (const id of ids) {
        const card = { v: 1, type: 'status', ts: Date.now(), state: 'online', model: 'bench cam', codecs: { video: ['H264'] } };
        db.storeRetained(`tali/v1/device/${id}/status`, Buffer.from(JSON.stringify(card)), 1);
      }
      db.close();
      samples.push(await startOnce(variant, dataDir, { count, user: 'bench', password }));
    }
    return samples;
  } finally {
    await rm(dataDir, { recursive: true, force: true });
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

/** `quick`: the warm row only (no cold start, no baseline). `cards`: N of "cards available after restart". */
export async function runStartup(options: { rounds: number; baseline?: string; quick?: boolean; cards: number }): Promise<BenchTable> {
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
  let cards: Sample[] = [];
  try {
    // First starts: the admin identity is made, and the compile cache fills (a cold variant has nothing to fill).
    for (const variant of variants) if (variant.env.NODE_DISABLE_COMPILE_CACHE === undefined) await startOnce(variant, dataDir);
    for (let round = 0; round < options.rounds; round++) {
      for (const variant of variants) samples.get(variant)!.push(await startOnce(variant, dataDir));
    }
    cards = await cardsAfterRestart(options.rounds, options.cards, variants[0]!.env);
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
  const cardStats = { wall: summarize(cards.map((s) => s.wallMs)), cpu: summarize(cards.map((s) => s.cpuMs)) };
  const cardsLabel = `cards available after restart (${options.cards} cards, compile cache warm)`;
  rows.push([cardsLabel, `${fmt(cardStats.wall.p50, 0)} / ${fmt(cardStats.wall.p95, 0)}`, `${fmt(cardStats.cpu.p50, 0)} / ${fmt(cardStats.cpu.p95, 0)}`, '– (none before a device reconnected)']);
  const warm = stats[0]!;
  return {
    id: 'startup',
    title: 'Start-up',
    columns: ['tali start → "tali ready"', 'wall ms p50 / p95', 'CPU ms p50 / p95', 'vs baseline (wall · CPU)'],
    rows,
    notes: [
      `${options.rounds} restarts per variant, interleaved, on an existing data directory; wall time from spawn to the ready line, CPU time of the process then. Each is stopped (SIGTERM) before the next starts.`,
      `Ready includes the media workers' prestart (mediaWorkersPrestart, default): ${availableParallelism()} worker threads here (one per core), each loaded and past werift's first use, with one DTLS certificate made on the main thread for all. The baseline had no media workers.`,
      ...(options.quick ? [] : ['Cold: NODE_DISABLE_COMPILE_CACHE=1, as on the first start after an install or upgrade (bin/tali.js keeps the cache in ~/.cache/tali; this run uses its own).']),
      `Cards available after restart: spawn until a fresh subscriber to {root}/v1/device/+/status has all ${options.cards} cards of registered devices, which the state file held as online (a crash's leftovers, written into it before each of ${options.rounds} starts); each arrives offline with lastSeen. CPU: of the bridge process at that moment. The baseline had no cards until each device reconnected.`,
      ...('missing' in tree ? [`No baseline row: ${tree.missing}.`] : [`Baseline ${commit!}: main before the start-up work, in a temporary git worktree with this node_modules, cache off (it had none).`]),
    ],
    bottleneck: `loading modules: ${fmt(warm.cpu.p50, 0)} ms of CPU even with the compile cache, in the main thread and again in each media worker thread (~0.3 s each, tali's sources and werift). On the main thread most of it is linking ~1 300 ES modules, half of them TypeBox's (typebox/compile: 681 modules, ~0.3 s of CPU), which the protocol's decode() compiles its validators with at import; werift's certificate stack (@peculiar/x509, asn1: ~75 ms) is loaded once, for the one certificate the main thread makes ([werift-x509-lazy]). Both are needed by the first offer a restarted bridge answers, so deferring them past "ready" would not shorten an outage; validators generated at build time (TypeBox's Code()) would remove the first`,
    data: { ...Object.fromEntries(stats.map(({ variant, wall, cpu }) => [variant.label, { wall, cpu, samples: samples.get(variant) }])), [cardsLabel]: { ...cardStats, samples: cards } },
    charts: [{ title: 'Start → ready', unit: 'ms', series: stats.map(({ variant }) => ({ label: variant.label, samples: samples.get(variant)!.map((s) => s.wallMs) })) }],
  };
}
