/**
 * Ingest: cameras of ~1 Mbit/s (30 fps VP8) streaming to one bridge with no viewer, raised level by level until loss
 * or event-loop lag: cameras per node, and the bridge's CPU per received packet against the floor measured in the
 * same run (a bare Node loop that parses the RTP header and decrypts AES-128-GCM, ./lib/floor.ts, run inside the
 * bridge's process so both see the same machine).
 *
 * Three processes, as the relay measurement: the bridge alone (bench/lib/target.ts), the cameras
 * (bench/lib/camera-worker.ts, werift senders). Level 0 is the bridge with no camera: its background CPU is
 * subtracted to give the marginal cost per packet. The knee is the first level with loss ≥ 1 % (packets the cameras
 * sent that the bridge did not count), a bridge event-loop delay median ≥ 20 ms, or the bridge at ≥ 95 % of the CPU
 * it can use; when the cameras' own process cannot send at the clip's rate any more, the run stops there and says so
 * (the load generator, not the bridge, is then the limit). A second figure comes from ./lib/receive-path.ts: the same
 * receive path without the socket, replayed in one process. A second floor, ./lib/dgram-floor.ts, is a bare Node
 * process receiving the same packet rate on a UDP socket from a sender process and doing only the floor's parse and
 * decryption: measured at each level's rate once the bridge and cameras are gone, it says how much of the bridge's
 * cost is the socket itself, which no JavaScript bridge avoids.
 */
import type { WorkerCommand, WorkerEvent } from './lib/camera-worker.ts';
import { Child } from './lib/child.ts';
import { makeClip } from './lib/clip.ts';
import { measureDgramFloor, type DgramFloorResult } from './lib/dgram-floor.ts';
import type { FloorResult } from './lib/floor.ts';
import { measureReceivePath, type ReceivePathResult } from './lib/receive-path.ts';
import type { BenchTable } from './lib/report.ts';
import { fmt, fmtInt, fmtRatio } from './lib/stats.ts';
import type { RelayStats, TargetCommand, TargetEvent } from './lib/target.ts';
import { sleep } from './lib/util.ts';

export interface IngestOptions {
  /** Cameras streaming at each level (after the 0-camera baseline). */
  levels: number[];
  settleMs: number;
  measureMs: number;
  clipFrames?: number;
  /** Packets replayed by the socket-less measurement (0 skips it). */
  replayPackets: number;
  /** Bridge options for this run (e.g. mediaWorkers). */
  bridgeConfig?: Record<string, unknown>;
  /** Write a .cpuprofile of the bridge's main thread during the last level's window. */
  profile?: string;
}

export interface IngestLevel {
  cameras: number;
  receivedPerSecond: number;
  sentPerSecond: number;
  bridgeCore: number;
  usPerPacket: number;
  marginalUsPerPacket: number;
  eldP50: number;
  eldP99: number;
  runQueue: number;
  lossPercent: number;
  camerasCore: number;
  /** The cameras' process sent less than 90 % of the clip's rate: the generator, not the bridge, limits. */
  generatorBehind: boolean;
  /** The bare Node dgram receiver at this level's packet rate (./lib/dgram-floor.ts). */
  socketFloor?: DgramFloorResult;
}

export async function runIngest(options: IngestOptions): Promise<BenchTable> {
  const clip = await makeClip(1000, options.clipFrames);
  const bridge = new Child<TargetCommand, TargetEvent>(new URL('./lib/target.ts', import.meta.url), {
    env: { ...process.env, BENCH_TARGET: 'bridge', BENCH_BRIDGE_CONFIG: JSON.stringify(options.bridgeConfig ?? {}) },
  });
  const cameras = new Child<WorkerCommand, WorkerEvent>(new URL('./lib/camera-worker.ts', import.meta.url));
  const levels: IngestLevel[] = [];
  let knee: IngestLevel | undefined;
  let floor: FloorResult | undefined;
  let replay: ReceivePathResult | undefined;
  const notes: string[] = [];
  try {
    const { port } = await bridge.next('ready', 60_000);
    const url = `mqtt://127.0.0.1:${port}`;
    bridge.send({ cmd: 'floor' });
    floor = (await bridge.next('floor', 120_000)).floor;
    const usage = async () => (bridge.send({ cmd: 'usage' }), bridge.next('usage', 10_000));
    const received = async (): Promise<RelayStats> => (bridge.send({ cmd: 'relayStats' }), (await bridge.next('relayStats', 10_000)).stats);
    const sent = async () => (cameras.send({ cmd: 'stats' }), cameras.next('stats', 10_000));
    let connected = 0;
    cameras.on((e) => void (e.type === 'connected' && connected++));

    let idleCpuPerMs = 0;
    let streaming = 0;
    const nominalPerCamera = clip.packetsPerSecond;
    for (const [index, target] of [0, ...options.levels].entries()) {
      if (target > streaming) {
        const ids = Array.from({ length: target - streaming }, (_, k) => `bench-ingest-${streaming + k}`);
        cameras.send({ cmd: 'prepare', n: ids.length, path: 'mqtt', url, root: 'tali', ids, clip: clip.path });
        await cameras.next('ready', 120_000);
        const want = target;
        cameras.send({ cmd: 'go' });
        const deadline = Date.now() + 60_000 + target * 500;
        while (connected < want && Date.now() < deadline) await sleep(100);
        if (connected < want) notes.push(`${want - connected} of ${target} cameras did not connect within the deadline at that level.`);
        streaming = target;
      }
      await sleep(options.settleMs);
      const [r0, s0] = [await received(), await sent()];
      await usage(); // resets the bridge's counters
      const last = index === options.levels.length;
      if (last && options.profile) {
        bridge.send({ cmd: 'profile', ms: options.measureMs, path: options.profile });
        await bridge.next('profiled', options.measureMs + 60_000);
      } else await sleep(options.measureMs);
      const u = await usage();
      const [r1, s1] = [await received(), await sent()];
      const seconds = u.wallMs / 1000;
      const got = r1.received - r0.received;
      const out = s1.packetsSent - s0.packetsSent;
      const cpuUs = u.cpuMs * 1000;
      if (target === 0) idleCpuPerMs = u.cpuMs / u.wallMs;
      const level: IngestLevel = {
        cameras: target,
        receivedPerSecond: got / seconds,
        sentPerSecond: out / seconds,
        bridgeCore: u.cpuMs / u.wallMs,
        usPerPacket: got > 0 ? cpuUs / got : NaN,
        marginalUsPerPacket: got > 0 ? (cpuUs - idleCpuPerMs * u.wallMs * 1000) / got : NaN,
        eldP50: u.eldP50,
        eldP99: u.eldP99,
        runQueue: u.runQueueMs / u.wallMs,
        lossPercent: out > 0 ? Math.max(0, (1 - got / out) * 100) : 0,
        camerasCore: (s1.cpuMs - s0.cpuMs) / u.wallMs,
        generatorBehind: target > 0 && out / seconds < 0.9 * target * nominalPerCamera,
      };
      levels.push(level);
      if (target > 0 && (level.lossPercent >= 1 || level.eldP50 >= 20 || level.bridgeCore >= 0.95 * u.cores || level.generatorBehind)) {
        knee = level;
        break;
      }
    }
  } finally {
    cameras.send({ cmd: 'stop' });
    await cameras.next('stopped', 60_000).catch(() => undefined);
    await cameras.close();
    bridge.send({ cmd: 'stop' });
    await bridge.next('stopped', 30_000).catch(() => undefined);
    await bridge.close();
    await clip.remove();
  }
  if (options.replayPackets > 0) replay = await measureReceivePath({ packets: options.replayPackets, passes: 11 });
  for (const l of levels) {
    if (l.cameras > 0 && l.receivedPerSecond > 0) {
      l.socketFloor = await measureDgramFloor({ packetsPerSecond: l.receivedPerSecond, ms: options.measureMs, idleMs: Math.min(1000, options.measureMs) });
    }
  }

  const floorUs = floor?.usPerPacket ?? NaN;
  const rows = levels.map((l) => [
    String(l.cameras),
    fmtInt(l.receivedPerSecond),
    `${fmt(l.bridgeCore * 100, 0)}%`,
    fmt(l.usPerPacket, 0),
    fmt(l.marginalUsPerPacket, 0),
    fmtRatio(l.marginalUsPerPacket / floorUs),
    fmt(l.socketFloor?.usPerPacket, 0),
    fmtRatio(l.marginalUsPerPacket / (l.socketFloor?.usPerPacket ?? NaN)),
    `${fmt(l.eldP50, 1)} / ${fmt(l.eldP99, 1)}`,
    `${fmt(l.runQueue * 100, 0)}%`,
    fmt(l.lossPercent, 2),
    `${fmt(l.camerasCore * 100, 0)}%`,
    l === knee ? (l.generatorBehind ? 'cameras behind' : 'knee') : '',
  ]);
  const withCameras = levels.filter((l) => l.cameras > 0 && Number.isFinite(l.marginalUsPerPacket));
  const capacity = knee ? levels[levels.indexOf(knee) - 1] : levels.at(-1);
  // The second floor row: the bare socket at the rate of the busiest level the bridge took (its own row has it too).
  const socketRow = (capacity?.cameras ? capacity : withCameras[0])?.socketFloor;
  if (replay) {
    const r = replay;
    const lo = Math.min(...r.ratios);
    const hi = Math.max(...r.ratios);
    rows.push([
      'replayed, no socket',
      fmtInt(r.packets),
      '',
      fmt(r.usPerPacket, 1),
      fmt(r.usPerPacket, 1),
      fmtRatio(r.ratioToFloor),
      '',
      '',
      '',
      '',
      '',
      '',
      `floor passes beside it: ${fmt(r.floorUs, 1)} µs; pairs ${fmt(lo, 2)}–${fmt(hi, 2)}×, all passes' CPU ${fmtRatio(r.totalRatio)}; main thread ${fmt(r.replay.mainUs, 1)} vs ${fmt(r.floor.mainUs, 1)} µs (${fmtRatio(r.mainRatio)}), helper threads ${fmt(r.replay.helperUs, 1)} vs ${fmt(r.floor.helperUs, 1)} µs; heap ${fmtInt(r.replay.heapBytes)} vs ${fmtInt(r.floor.heapBytes)} B/packet`,
    ]);
  }
  if (floor) rows.push(['floor: parse + AES-GCM', '', '', fmt(floor.usPerPacket, 1), fmt(floor.usPerPacket, 1), '1.00×', '', '', '', '', '', '', `Buffer key: ${fmt(floor.usPerPacketBufferKey, 1)} µs`]);
  if (socketRow) {
    const s = socketRow;
    rows.push(['floor: Node dgram socket + parse + AES-GCM', fmtInt(s.packetsPerSecond), '', fmt(s.usPerPacket, 0), fmt(s.usPerPacket, 0), fmtRatio(s.usPerPacket / floorUs), fmt(s.usPerPacket, 0), '1.00×', '', '', fmt(s.sent > 0 ? Math.max(0, (1 - s.received / s.sent) * 100) : 0, 2), '', 'sender in another process']);
  }
  // The per-packet cost least distorted by contention: the level where the bridge waited least for a CPU.
  const best = [...withCameras].sort((a, b) => a.runQueue - b.runQueue)[0];
  const perCamera = clip.packetsPerSecond;
  const perCore = best ? 1e6 / best.marginalUsPerPacket / perCamera : NaN;
  notes.unshift(
    `Clip: ${fmt(clip.kbps, 0)} kbit/s VP8 at ${clip.fps} fps (${fmt(perCamera, 0)} packets/s per camera), ${clip.method}. Each level settles ${options.settleMs} ms and is measured for ${options.measureMs} ms; level 0 is the bridge with no camera (its background CPU is what "marginal" subtracts).`,
    `"µs/pkt" is the bridge process's CPU (every thread) per packet received; "× floor" divides the marginal figure by the floor measured inside the bridge's process in this run (${fmt(floorUs, 1)} µs: RTP header parse + AES-128-GCM decrypt with a KeyObject; the same loop with the key as a Buffer, as werift did before its patch: ${fmt(floor?.usPerPacketBufferKey, 1)} µs). The floor has no socket; the "replayed" row is the bridge's own receive path without the socket (./lib/receive-path.ts), and its "× floor" is the median over ${replay?.ratios.length ?? 0} pairs of a replay pass ÷ the floor pass beside it in that same process, the order alternating (replay first, then floor first), after ${replay?.warmupPairs ?? 0} pairs not counted (V8 still compiling the path on its helper threads); each pass goes over the recording ${replay?.repeat ?? 1}× (the floor over as many packets), both fed in chunks of 200 with a turn of the loop between. Its last column splits the two by thread (the main thread's JavaScript; the rest: V8's helper threads, GC and compilers) and gives the heap bytes each packet allocates, garbage included (V8's sampling heap profiler): what the replay leaves for the scavenger beyond the floor's decipher objects is what its helper-thread CPU pays.`,
    `Two floors, both measured in this run. "× floor" is the issue's goal (≤ 2×): the bridge's cost per packet against a bare loop that parses and decrypts, with no socket. "× socket floor" is against a bare Node process that receives the same packet rate on a UDP socket from another process (bursts every few ms) and does only that parse and decryption: one event-loop turn and one recvmsg per datagram, a cost no JavaScript bridge avoids (measured at each level's rate; it falls as the rate rises and datagrams share wake-ups). ${goalNote(replay, floorUs, withCameras)}`,
    `Knee: ${knee ? [knee.lossPercent >= 1 && `loss ${fmt(knee.lossPercent, 1)} %`, knee.eldP50 >= 20 && `event-loop delay p50 ${fmt(knee.eldP50, 0)} ms`, knee.generatorBehind && `the cameras' process sent ${fmtInt(knee.sentPerSecond)} of ${fmtInt(knee.cameras * perCamera)} packets/s (the load generator limits, not the bridge)`, knee.bridgeCore >= 0.95 && `bridge at ${fmt(knee.bridgeCore * 100, 0)} % of a core`].filter(Boolean).join(', ') : 'none within the levels tried'}. Cameras per node on this machine: ${capacity && capacity.cameras > 0 ? capacity.cameras : 'below the first level'}${Number.isFinite(perCore) ? `; at ~${fmt(best!.marginalUsPerPacket, 0)} µs per packet one dedicated core would take ~${fmtInt(perCore)} such cameras` : ''}.`,
  );
  const last = knee ?? levels.at(-1);
  const perPacket = `The bridge's marginal cost per packet is mostly the UDP socket (a bare Node receiver of the same rate: ~${fmt(last?.socketFloor?.usPerPacket, 0)} µs of the bridge's ${fmt(last?.marginalUsPerPacket, 0)} µs) and werift's path without it (replayed: ${fmt(replay?.usPerPacket, 0)} µs, of which SRTP decryption ~${fmt(replay?.srtpDecryptUs, 0)} µs, about the floor's ${fmt(floorUs, 0)} µs).`;
  return {
    id: 'ingest',
    title: 'Ingest: cameras at ~1 Mbit/s, 30 fps, no viewer',
    columns: ['cameras', 'pkts/s in', 'bridge CPU', 'µs/pkt', 'marginal µs/pkt', '× floor', 'socket floor µs/pkt', '× socket floor', 'loop delay p50/p99 ms', 'waiting for CPU', 'loss %', 'cameras CPU', ''],
    rows,
    notes,
    bottleneck: last
      ? last.generatorBehind || last.camerasCore > 0.8
        ? `The cameras, not the bridge: werift's sender (packetize, SRTP encrypt, UDP send) costs the cameras' process about as much per packet as receiving costs the bridge, and both share the 2 cores (the cameras' process used ${fmt(last.camerasCore * 100, 0)} % of a core, the bridge ${fmt(last.bridgeCore * 100, 0)} %). ${perPacket}`
        : `The bridge's CPU per packet. ${perPacket} At the knee the bridge used ${fmt(last.bridgeCore * 100, 0)} % of a core and waited for a CPU ${fmt(last.runQueue * 100, 0)} % of the time.`
      : undefined,
    data: { clip: { kbps: clip.kbps, fps: clip.fps, packetsPerSecond: clip.packetsPerSecond, method: clip.method }, levels, knee, capacity, floor, replay },
  };
}

/** Which part of the goal (≤ 2× the parse + decrypt floor) this run meets, in words. */
function goalNote(replay: ReceivePathResult | undefined, floorUs: number, levels: IngestLevel[]): string {
  const replayed = replay ? replay.ratioToFloor : NaN;
  const live = levels.map((l) => l.marginalUsPerPacket / floorUs).filter(Number.isFinite);
  const socket = levels.map((l) => l.marginalUsPerPacket / (l.socketFloor?.usPerPacket ?? NaN)).filter(Number.isFinite);
  const range = (xs: number[]) => {
    const [lo, hi] = [fmt(Math.min(...xs), 1), fmt(Math.max(...xs), 1)];
    return xs.length === 0 ? '–' : lo === hi ? `${lo}×` : `${lo}–${hi}×`;
  };
  const met = (x: number) => (x <= 2 ? 'met' : 'not met');
  return [
    Number.isFinite(replayed) &&
      `Goal, receive path without the socket (replayed): ${fmtRatio(replayed)} the floor (median of the pairs, every thread), ${met(replayed)}; all counted passes' CPU together ${fmtRatio(replay!.totalRatio)} (${met(replay!.totalRatio)}); the main thread alone ${fmtRatio(replay!.mainRatio)}.`,
    live.length > 0 && `With the UDP socket: ${range(live)} the floor, ${met(Math.min(...live))}; against the bare socket floor ${range(socket)}.`,
  ]
    .filter(Boolean)
    .join(' ');
}
