/**
 * 6. Signaling under media load: offer → answer and watch → answer latency (p50/p99) while the relay carries 80 % of
 * its capacity, against the same bridge with no media, in the same run (issue 16; goal ≤ 1.2× the idle figures).
 *
 * The load is the relay table's (bench/lib/relay-load.ts): the bridge alone in a process, cameras streaming ~1 Mbit/s
 * from a second, werift viewers in a third. The probe (bench/lib/probe.ts) is a fourth, light process: one camera
 * offering and one viewer watching, one negotiation at a time, each timed from its MQTT publish to the answer's
 * arrival and ended with a bye (no ICE, no DTLS, no media of its own).
 *
 * Per media-worker count, on one bridge: (1) idle: the load's cameras connected, their sessions up, no media and no
 * viewers; probes. (2) The relay table's ramp with the cameras streaming: viewers added level by level until its
 * knee; capacity = the level before it. (3) Viewers closed down to 80 % of that capacity; after a settling time,
 * the same probes while the bridge's CPU, loop delay and the viewers' loss are measured over the probing window.
 */
import { Child } from './lib/child.ts';
import type { ProbeCommand, ProbeEvent } from './lib/probe.ts';
import { RelayLoad, type LevelResult } from './lib/relay-load.ts';
import type { BenchTable } from './lib/report.ts';
import { fmt, fmtInt, fmtRatio, ratio, summarize, type Summary } from './lib/stats.ts';
import { availableParallelism, loadavg } from 'node:os';
import { OPTIONS } from '../src/config/options.ts';

export interface SigloadOptions {
  streams: number;
  identities: number;
  /** The relay table's ramp (viewers per stream after the 0-viewer level) that finds the knee. */
  viewersPerStream: number[];
  settleMs: number;
  measureMs: number;
  /** Share of the relay's capacity (in viewers) the probes run at. */
  loadShare: number;
  /** Probes of each kind per phase, and the pause after each. */
  probes: number;
  gapMs: number;
  /** Probes of each kind before the idle phase, not counted (the bridge's first answers compile code paths). */
  warmup: number;
  clipFrames?: number;
  mediaWorkers?: number;
  /**
   * Nice value of the cameras' and viewers' processes (RelayLoad's generatorNice), for the ramp that finds the
   * capacity and the probes alike: they stand for other machines, and here they would take the bridge's cores.
   */
  generatorNice?: number;
}

interface Phase {
  name: 'idle' | 'load';
  level: LevelResult;
  offer: Summary;
  watch: Summary;
  failed: string[];
  loadAverage: number;
  samples: { offer: number[]; watch: number[] };
}

export interface SigloadData {
  mediaWorkers: number;
  capacity?: LevelResult;
  knee?: LevelResult;
  kneeReason: string;
  /** Levels that looked like the knee once and not when measured again. */
  unconfirmed: LevelResult[];
  idle: Phase;
  load: Phase;
}

const T0 = performance.now();
const trace = (what: string) => process.env.BENCH_DEBUG && console.error(`[sigload ${((performance.now() - T0) / 1000).toFixed(1)} s] ${what}`);
/** The probe's own viewer identity: the load's viewers fill their users' per-user limits (maxViewersPerUser). */
const PROBE_VIEWER = 'bench-probe-viewer';

async function probePhase(load: RelayLoad, probe: Child<ProbeCommand, ProbeEvent>, name: Phase['name'], viewersPerStream: number, options: SigloadOptions): Promise<Phase> {
  const loadAverage = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const { level, result } = await load.measureDuring(viewersPerStream, options.settleMs, async () => {
    probe.send({ cmd: 'run', count: options.probes, gapMs: options.gapMs });
    return probe.next('probed', options.probes * 2 * 15_000);
  });
  trace(`${name}: ${result.offer.length} offers, ${result.watch.length} watches, ${result.failed.length} failed`);
  return { name, level, offer: summarize(result.offer), watch: summarize(result.watch), failed: result.failed, loadAverage, samples: { offer: result.offer, watch: result.watch } };
}

export async function runSigload(options: SigloadOptions): Promise<BenchTable> {
  const workers = options.mediaWorkers ?? 1;
  const identities = Math.max(1, options.identities);
  const load = await RelayLoad.start({
    streams: options.streams,
    identities,
    clipFrames: options.clipFrames,
    mediaWorkers: workers,
    paused: true,
    extraIdentities: [PROBE_VIEWER],
    generatorNice: options.generatorNice,
    // The idle phase's camera sessions send no media: keep them (the default drops a silent session after 10 s).
    bridgeConfig: { mediaTimeoutMs: 600_000 },
    trace,
  });
  const probe = new Child<ProbeCommand, ProbeEvent>(new URL('./lib/probe.ts', import.meta.url));
  let data: SigloadData;
  try {
    probe.send({ cmd: 'prepare', url: load.url, root: 'tali', cameraId: 'bench-probe-cam', viewer: { id: PROBE_VIEWER, secret: load.secret(PROBE_VIEWER) }, deviceId: load.deviceIds[0] as string });
    await probe.next('ready', 60_000);
    probe.send({ cmd: 'run', count: options.warmup, gapMs: options.gapMs });
    await probe.next('probed', options.warmup * 2 * 15_000);
    const idle = await probePhase(load, probe, 'idle', 0, options);

    load.media(true);
    const ramp = await load.ramp(options.viewersPerStream, options.settleMs, options.measureMs, true);
    const capacity = ramp.capacity?.viewers ?? 0;
    const target = Math.floor(options.loadShare * capacity);
    trace(`capacity ${capacity} viewers (${load.kneeReason(ramp.knee)}); probing at ${target}`);
    await load.setViewers(target, `${Math.round(options.loadShare * 100)} % of capacity`);
    const loaded = await probePhase(load, probe, 'load', target / options.streams, options);
    data = { mediaWorkers: workers, capacity: ramp.capacity, knee: ramp.knee, kneeReason: load.kneeReason(ramp.knee), unconfirmed: ramp.unconfirmed, idle, load: loaded };
  } finally {
    await probe.close();
    await load.close();
  }

  const { idle, load: loaded } = data;
  const cell = (s: Summary) => `${fmt(s.p50)} / ${fmt(s.p99)}`;
  const vs = (s: Summary, base: Summary) => `${fmtRatio(ratio(s.p50, base.p50))} / ${fmtRatio(ratio(s.p99, base.p99))}`;
  const row = (p: Phase, what: string) => [
    what,
    String(p.level.viewers),
    fmtInt(p.level.forwardedPerSecond),
    `${fmt(p.level.bridgeCore * 100, 0)}%`,
    `${fmt(p.level.eldP50, 1)} / ${fmt(p.level.eldP99, 1)}`,
    `${fmt(p.level.runQueue * 100, 0)}%`,
    Number.isFinite(p.level.workerCore) ? `${fmt(p.level.workerCore * 100, 0)}% / ${fmt(p.level.workerRunQueue * 100, 0)}%` : '–',
    Number.isFinite(p.level.workerRttP50) ? `${fmt(p.level.workerRttP50, 1)} / ${fmt(p.level.workerRttP99, 1)}` : '–',
    fmt(p.level.lossPercent, 2),
    cell(p.offer),
    p === idle ? 'baseline' : vs(p.offer, idle.offer),
    cell(p.watch),
    p === idle ? 'baseline' : vs(p.watch, idle.watch),
    String(p.failed.length),
  ];
  const capacityViewers = data.capacity?.viewers ?? 0;
  const share = capacityViewers > 0 ? loaded.level.viewers / capacityViewers : NaN;
  const notes = [
    `Load as the relay table makes it: ${options.streams} cameras at ~${fmt(load.clip.kbps, 0)} kbit/s VP8 (${load.clip.method}) and werift viewers, each in its own process; capacity from the relay table's ramp (levels ${options.viewersPerStream.join(', ')} per stream, ${options.settleMs} + ${options.measureMs} ms each; a level that looks like the knee is measured once more and must look so again${data.unconfirmed.length ? `, which ${data.unconfirmed.map((l) => `${l.viewers} viewers (${load.kneeReason(l)})`).join(' and ')} did not` : ''}): ${capacityViewers} viewers (knee: ${data.kneeReason}). Probed at ${fmt(options.loadShare * 100, 0)} % of it: ${loaded.level.viewers} viewers connected (${fmt(share * 100, 0)} %).`,
    `Idle: the same bridge and cameras with their sessions up but no media and no viewers. Probes: ${options.probes} of each kind per phase (after ${options.warmup} not counted before the idle phase), one at a time, ${options.gapMs} ms apart, from a separate process (two MQTT clients, no media): offer → answer = a camera's offer + end-of-candidates published until its answer arrives; watch → answer = a viewer's watch of a streaming camera until its answer; then bye. Over the probing window: the bridge process's CPU (every thread), its main thread's event-loop delay and the share of the window it was runnable but waiting for a CPU (/proc schedstat), the same wait and CPU for the busiest media worker thread (mediaWorkers ≥ 2), a command's round trip from the main thread through the media workers and back (MediaPlane.refresh() every 50 ms: what an answer's work waits for in a worker's queue, behind its packets), and the viewers' loss.`,
    `Priorities: the bridge's media worker threads ${bridgeNice(options)}; the cameras' and viewers' processes ${options.generatorNice ? `at nice ${options.generatorNice} (they stand for other machines; on ${availableParallelism()} shared cores they would otherwise take the bridge's CPU: the capacity and the probes are measured so alike)` : 'at the bench\'s own priority'}; the probe at the bench's.`,
    `Machine load average (1 min) when each phase started: idle ${idle.loadAverage}, under load ${loaded.loadAverage}.`,
    ...load.notes,
    ...[...idle.failed, ...loaded.failed].slice(0, 3).map((f) => `probe failed: ${f}`),
  ];
  return {
    id: 'sigload',
    title: `Signaling under media load: answer latency at ${fmt(options.loadShare * 100, 0)} % of relay capacity against idle (ms)`,
    columns: ['media', 'viewers', 'pkts/s out', 'bridge CPU', 'loop delay p50/p99 ms', 'main thread waiting for CPU', 'busiest worker CPU / waiting', 'worker round trip p50/p99 ms', 'loss %', 'offer → answer p50/p99', 'ratio p50/p99', 'watch → answer p50/p99', 'ratio p50/p99', 'failed'],
    rows: [row(idle, 'none (idle)'), row(loaded, `${fmt(share * 100, 0)} % of capacity`)],
    notes,
    bottleneck: sigloadBottleneck(data),
    data,
    charts: [
      {
        title: `Answer latency idle and at ${fmt(options.loadShare * 100, 0)} % of relay capacity (${workers} media worker${workers === 1 ? '' : 's'})`,
        unit: 'ms',
        series: [
          { label: 'offer → answer, idle', samples: idle.samples.offer },
          { label: 'offer → answer, load', samples: loaded.samples.offer },
          { label: 'watch → answer, idle', samples: idle.samples.watch },
          { label: 'watch → answer, load', samples: loaded.samples.watch },
        ],
      },
    ],
  };
}

/** The bridge's mediaWorkerNice as BENCH_BRIDGE_CONFIG sets it or the option's default. */
function bridgeNice(options: SigloadOptions): string {
  if ((options.mediaWorkers ?? 1) === 1) return 'none (one-worker mode: media on the main thread)';
  const set = (JSON.parse(process.env.BENCH_BRIDGE_CONFIG ?? '{}') as { mediaWorkerNice?: number }).mediaWorkerNice;
  const nice = set ?? OPTIONS.mediaWorkerNice.default;
  return `${nice} nice values below the main thread (mediaWorkerNice${set === undefined ? ', default' : ''})`;
}

function sigloadBottleneck(d: SigloadData): string {
  const l = d.load.level;
  const worst = Math.max(ratio(d.load.offer.p50, d.idle.offer.p50), ratio(d.load.watch.p50, d.idle.watch.p50));
  const where =
    d.mediaWorkers === 1
      ? `every packet is decrypted, forwarded and encrypted on the event loop that also carries MQTT and signaling, so an answer queues behind packets: that loop's delay was p50 ${fmt(l.eldP50, 1)} / p99 ${fmt(l.eldP99, 0)} ms at this load (idle ${fmt(d.idle.level.eldP50, 1)} / ${fmt(d.idle.level.eldP99, 0)} ms) and it waited for a CPU ${fmt(l.runQueue * 100, 0)} % of the window (idle ${fmt(d.idle.level.runQueue * 100, 0)} %)`
      : `the main thread carries only MQTT and signaling (its loop delay p50 ${fmt(l.eldP50, 1)} / p99 ${fmt(l.eldP99, 0)} ms, idle ${fmt(d.idle.level.eldP50, 1)} / ${fmt(d.idle.level.eldP99, 0)} ms), but each answer is made on the camera's worker (a werift peer created there, its candidates gathered), queued behind that worker's packets (a command's round trip through the workers p50 ${fmt(l.workerRttP50, 1)} / p99 ${fmt(l.workerRttP99, 1)} ms, idle ${fmt(d.idle.level.workerRttP50, 1)} / ${fmt(d.idle.level.workerRttP99, 1)} ms): the busiest worker used ${fmt(l.workerCore * 100, 0)} % of a core and waited for a CPU ${fmt(l.workerRunQueue * 100, 0)} % of the window (idle ${fmt(d.idle.level.workerRunQueue * 100, 0)} %), the main thread ${fmt(l.runQueue * 100, 0)} % (idle ${fmt(d.idle.level.runQueue * 100, 0)} %): the workers, the main thread and the cameras' and viewers' processes share the machine's ${availableParallelism()} cores`;
  return `Under load the answers took ${fmtRatio(worst)} the idle p50 at worst (goal ≤ 1.2×: ${worst <= 1.2 ? 'met' : 'not met'}): ${where}.`;
}

/** The ratios under load, for the combined table's note. */
export function sigloadSummary(table: BenchTable): string {
  const d = table.data as SigloadData;
  return `offer → answer ${fmtRatio(ratio(d.load.offer.p50, d.idle.offer.p50))} / ${fmtRatio(ratio(d.load.offer.p99, d.idle.offer.p99))}, watch → answer ${fmtRatio(ratio(d.load.watch.p50, d.idle.watch.p50))} / ${fmtRatio(ratio(d.load.watch.p99, d.idle.watch.p99))} of idle (p50 / p99) at ${d.load.level.viewers} of ${d.capacity?.viewers ?? 0} viewers`;
}
