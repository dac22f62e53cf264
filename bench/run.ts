/**
 * The benchmark suite: `npm run bench` (a few minutes on a 2-core machine) or `npm run bench -- --quick` (~30 s
 * smoke run, what test/bench/quick.test.ts executes so the suite cannot rot). Runs the measurements in turn,
 * prints each table as it completes, and writes under the output folder (default bench/results/, or
 * bench/results/quick/ with --quick):
 *
 *   <timestamp>.json   every figure and raw sample of this run (not committed)
 *   latest.json        the same, for the latest run
 *   latest.md          the tables, notes and bottlenecks, with the machine they ran on
 *   latest.svg         box plots of the latency distributions
 *
 * Options: --quick, --only signaling,broker,… (re-runs those and keeps the other tables of the latest run), --out DIR,
 * --profile FILE (ingest: a .cpuprofile of the bridge's main thread during its last level in one-worker mode, where the
 * main thread runs the peers; read it with
 * `node bench/lib/cpuprofile.ts FILE`).
 * Every figure is a median with p95/p99 over many runs, and every comparison is a ratio against a baseline that the
 * same run measures: these machines are shared and noisy, so figures from different runs are not comparable.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBroker } from './broker.ts';
import { concurrencySummary, runConcurrency } from './concurrency.ts';
import { runConnections } from './connections.ts';
import { runFleet } from './fleet.ts';
import { ingestSummary, runIngest } from './ingest.ts';
import { markdownSection, printTable, type BenchTable } from './lib/report.ts';
import { boxPlotSvg } from './lib/svg.ts';
import { runPeerStacks, runLossy } from './interop.ts';
import { relayCapacity, runRelay } from './relay.ts';
import { runByWorkers } from './lib/by-workers.ts';
import { runSignaling } from './signaling.ts';
import { runSigload, sigloadSummary } from './sigload.ts';
import { runStartup } from './startup.ts';
import { runTurn } from './turn.ts';
import { runWireBytes } from './wire-bytes.ts';

export const MEASUREMENTS = ['signaling', 'concurrency', 'broker', 'connections', 'relay', 'sigload', 'ingest', 'wire-bytes', 'interop', 'lossy', 'fleet', 'turn', 'startup'] as const;
export type MeasurementId = (typeof MEASUREMENTS)[number];

const TITLES: Record<MeasurementId, string> = {
  signaling: 'Signaling overhead',
  concurrency: 'Concurrency',
  broker: 'Broker',
  connections: 'Connections',
  relay: 'Relay',
  sigload: 'Signaling under media load',
  ingest: 'Ingest',
  'wire-bytes': 'Bytes on the wire',
  interop: 'Time to first frame per peer stack',
  lossy: 'Camera sessions on a lossy link',
  fleet: 'Fleet reconnect after a restart',
  turn: 'Time to first frame through TURN',
  startup: 'Start-up',
};

/**
 * The sigload table's cameras and viewers (other machines in a deployment) take only the CPU the bridge leaves;
 * BENCH_GENERATOR_NICE=0 runs them at the bench's priority (for an A/B).
 */
const SIGLOAD_GENERATOR_NICE = Number(process.env.BENCH_GENERATOR_NICE ?? 19);

/** The N of "1 worker against N": the default of mediaWorkers (one per core), at least 2. */
const WORKERS = Math.max(2, availableParallelism());
/** The sigload table's worker counts; BENCH_SIGLOAD_WORKERS=2 runs only the N row (a shorter A/B). */
const SIGLOAD_WORKERS = process.env.BENCH_SIGLOAD_WORKERS?.split(',').map(Number) ?? [1, WORKERS];

function plan(quick: boolean, profile?: string): Record<MeasurementId, () => Promise<BenchTable>> {
  return quick
    ? {
        signaling: () => runSignaling({ rounds: 3, warmup: 1 }),
        concurrency: () => runByWorkers([1, 2], (mediaWorkers) => runConcurrency({ levels: [[1, 1], [4, 1]], timeoutMs: 20_000, mediaWorkers }), concurrencySummary),
        broker: () => runBroker({ rounds: 1, phaseMs: 150, windows: { '1to1': 8, '100to100': 2 }, many: 10 }),
        connections: () => runConnections({ levels: [50, 150], baselineUpTo: 150, window: 50 }),
        relay: () => runByWorkers([1, 2], (mediaWorkers) => runRelay({ streams: 1, viewersPerStream: [1, 2], settleMs: 300, measureMs: 700, identities: 1, clipFrames: 60, mediaWorkers }), relayCapacity),
        sigload: () => runByWorkers([1], (mediaWorkers) => runSigload({ streams: 1, identities: 1, viewersPerStream: [2], settleMs: 300, measureMs: 700, loadShare: 0.8, probes: 3, gapMs: 20, warmup: 2, clipFrames: 60, mediaWorkers, generatorNice: SIGLOAD_GENERATOR_NICE }), sigloadSummary),
        ingest: () => runByWorkers([2, 1], (mediaWorkers) => runIngest({ levels: [2], settleMs: 300, measureMs: 700, clipFrames: 60, replayPackets: mediaWorkers === 1 ? 0 : 400, bridgeConfig: { mediaWorkers }, profile: mediaWorkers === 1 ? profile : undefined }), ingestSummary),
        'wire-bytes': () => runWireBytes(),
        interop: () => runPeerStacks({ rounds: 1 }),
        lossy: () => runLossy({ trials: 1, cameras: 1, losses: [0.05], stacks: ['werift'] }),
        fleet: () => runFleet({ devices: 20 }),
        turn: () => runTurn({ rounds: 1 }),
        startup: () => runStartup({ rounds: 1, quick: true, cards: 100 }),
      }
    : {
        signaling: () => runSignaling({ rounds: 40, warmup: 3 }),
        concurrency: () => runByWorkers([1, WORKERS], (mediaWorkers) => runConcurrency({ levels: [[1, 10], [10, 3], [100, 1]], timeoutMs: 30_000, mediaWorkers }), concurrencySummary),
        broker: () => runBroker({ rounds: 3, phaseMs: 800, windows: { '1to1': 32, '100to100': 4 }, many: 100 }),
        connections: () => runConnections({ levels: [1000, 5000, 10_000], baselineUpTo: 5000, window: 256, heapAt: [500, 1500] }),
        relay: () =>
          runByWorkers(
            [1, WORKERS],
            (mediaWorkers) => runRelay({ streams: 4, viewersPerStream: [1, 2, 4, 8, 12, 16, 20, 25, 30, 35, 40, 45, 50], settleMs: 2000, measureMs: 4000, identities: 8, mediaWorkers }),
            relayCapacity,
          ),
        sigload: () =>
          runByWorkers(
            SIGLOAD_WORKERS,
            (mediaWorkers) => runSigload({ streams: 4, identities: 8, viewersPerStream: [1, 2, 4, 8, 12, 16, 20, 25, 30, 35, 40, 45, 50], settleMs: 2000, measureMs: 4000, loadShare: 0.8, probes: 100, gapMs: 50, warmup: 10, mediaWorkers, generatorNice: SIGLOAD_GENERATOR_NICE }),
            sigloadSummary,
          ),
        // The default (a worker per core) over every level, with the replay; one-worker mode over fewer levels.
        ingest: () =>
          runByWorkers(
            [WORKERS, 1],
            (mediaWorkers) =>
              mediaWorkers === 1
                ? runIngest({ levels: [8, 32, 64, 96, 128], settleMs: 2000, measureMs: 5000, replayPackets: 0, bridgeConfig: { mediaWorkers }, profile })
                : runIngest({ levels: [4, 8, 16, 24, 32, 48, 64, 96, 128], settleMs: 2000, measureMs: 5000, replayPackets: 3000, bridgeConfig: { mediaWorkers } }),
            ingestSummary,
          ),
        'wire-bytes': () => runWireBytes(),
        interop: () => runPeerStacks({ rounds: 20 }),
        lossy: () => runLossy({ trials: 40, cameras: 4, losses: [0, 0.05, 0.15], stacks: ['werift', 'aiortc'] }),
        fleet: () => runFleet({ devices: 1000 }),
        turn: () => runTurn({ rounds: 20 }),
        startup: () => runStartup({ rounds: 10, cards: 1000 }),
      };
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  commit: string;
  loadAverageAtStart: number[];
  loadAverageAtEnd?: number[];
}

export async function machine(): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    // not a git checkout
  }
  return {
    cpu: model,
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: release(),
    commit,
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export interface RunResult {
  startedAt: string;
  quick: boolean;
  seconds: number;
  machine: Machine;
  tables: BenchTable[];
  errors: { id: string; message: string }[];
}

/** n evenly spaced order statistics (min and max kept): the distribution without every sample. */
function thin(samples: number[], n: number): number[] {
  if (samples.length <= n) return samples;
  const sorted = [...samples].sort((a, b) => a - b);
  return Array.from({ length: n }, (_, i) => sorted[Math.round((i * (sorted.length - 1)) / (n - 1))] as number);
}

function machineLine(m: Machine): string {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, Node ${m.node}, Linux ${m.kernel}; load average ${m.loadAverageAtStart.join(' / ')} at start${m.loadAverageAtEnd ? `, ${m.loadAverageAtEnd.join(' / ')} at end` : ''}`;
}

function rerun(result: RunResult): boolean {
  const end = Date.parse(result.startedAt) + result.seconds * 1000;
  return result.tables.some((t) => t.ranAt !== undefined && Date.parse(t.ranAt) > end);
}

export function markdown(result: RunResult): string {
  const parts = [
    `# tali benchmarks${result.quick ? ' (quick smoke run: small counts, figures not meaningful)' : ''}`,
    '',
    `Run ${result.startedAt} on commit ${result.machine.commit}, ${Math.round(result.seconds)} s. Machine: ${machineLine(result.machine)}.${rerun(result) ? ' Some sections were re-run since with `--only`.' : ''} Each section says when it ran and how loaded the machine was (the load average counts every process on the machine: it is shared).`,
    '',
    'Every figure is a median with p95/p99 over many runs, and every comparison is a ratio against a baseline measured in the same run: this machine is shared and noisy, so compare ratios, not absolute figures across runs. Regenerate with `npm run bench`.',
    '',
    '![latency distributions](latest.svg)',
    '',
  ];
  for (const e of result.errors) parts.push(`> **${e.id} failed:** ${e.message.split('\n')[0]}`, '');
  result.tables.forEach((t, i) => parts.push(markdownSection(t, i + 1)));
  return parts.join('\n');
}

export async function runSuite(options: { quick: boolean; only?: MeasurementId[]; out?: string; profile?: string; log?: (s: string) => void }): Promise<RunResult> {
  const log = options.log ?? ((s: string) => console.log(s));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const m = await machine();
  log(`tali benchmarks${options.quick ? ' --quick' : ''}: ${machineLine(m)}`);
  const steps = plan(options.quick, options.profile);
  const tables: BenchTable[] = [];
  const errors: RunResult['errors'] = [];
  for (const id of options.only ?? MEASUREMENTS) {
    const t0 = performance.now();
    const ranAt = new Date().toISOString();
    const loadAverage = Math.round((loadavg()[0] ?? 0) * 100) / 100;
    try {
      const table = await steps[id]();
      table.ranAt = ranAt;
      table.loadAverage = loadAverage;
      table.seconds = Math.round((performance.now() - t0) / 100) / 10;
      tables.push(table);
      log(`${printTable(table)}\n  (${table.seconds} s)`);
    } catch (err) {
      const message = (err as Error).stack ?? String(err);
      errors.push({ id, message });
      tables.push({ id, title: TITLES[id], columns: ['error'], rows: [[(err as Error).message]], notes: ['This measurement failed; see the JSON for the stack.'], ranAt, loadAverage });
      log(`\n== ${TITLES[id]} == FAILED: ${message}`);
    }
  }
  m.loadAverageAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  const result: RunResult = { startedAt, quick: options.quick, seconds: (performance.now() - started) / 1000, machine: m, tables, errors };

  const out = options.out ?? fileURLToPath(new URL(options.quick ? './results/quick/' : './results/', import.meta.url));
  await mkdir(out, { recursive: true });
  if (options.only) {
    // A partial run replaces its tables in the latest run's results and keeps the rest.
    const previous = await readFile(join(out, 'latest.json'), 'utf8').then((t) => JSON.parse(t) as RunResult, () => undefined);
    if (previous && previous.quick === options.quick) {
      const fresh = new Map(tables.map((t) => [t.id, t]));
      result.tables = MEASUREMENTS.flatMap((id) => fresh.get(id) ?? previous.tables.filter((t) => t.id === id));
      result.errors = [...previous.errors.filter((e) => !fresh.has(e.id)), ...errors];
      result.startedAt = previous.startedAt;
      result.seconds = previous.seconds;
      result.machine = { ...previous.machine, commit: m.commit };
    }
  }
  // Keep the file small enough to commit: at most 1000 evenly spaced order statistics per chart series.
  for (const table of result.tables) for (const panel of table.charts ?? []) for (const series of panel.series) series.samples = thin(series.samples, 1000);
  const json = JSON.stringify(result, null, 1);
  await writeFile(join(out, `${startedAt.replace(/[:.]/g, '-')}.json`), json);
  await writeFile(join(out, 'latest.json'), json);
  await writeFile(join(out, 'latest.md'), markdown(result));
  const panels = result.tables.flatMap((t) => t.charts ?? []);
  await writeFile(join(out, 'latest.svg'), boxPlotSvg(`tali benchmarks — ${startedAt.slice(0, 10)} — ${m.cpu}, ${m.cores} cores`, panels));
  log(`\nwrote ${join(out, 'latest.md')}, latest.svg, latest.json (${Math.round(result.seconds)} s)`);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Let 'exit' handlers run on Ctrl-C or kill, so no broker or child outlives the run.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
  };
  const only = value('--only')?.split(',') as MeasurementId[] | undefined;
  const unknown = only?.filter((id) => !(MEASUREMENTS as readonly string[]).includes(id));
  if (unknown?.length) {
    console.error(`unknown measurement ${unknown.join(', ')}; choose from ${MEASUREMENTS.join(', ')}`);
    process.exit(2);
  }
  const result = await runSuite({ quick: args.includes('--quick'), only, out: value('--out'), profile: value('--profile') });
  process.exit(result.errors.length ? 1 : 0);
}
