/**
 * Ingest: cameras of ~1 Mbit/s (30 fps VP8) streaming to one bridge with no viewer, raised level by level until loss
 * or event-loop lag: cameras per node, and the bridge's CPU per received packet against floors measured in the same
 * run.
 *
 * Processes: the bridge alone (bench/lib/target.ts), the cameras (bench/lib/camera-worker.ts, werift senders), and a
 * socket floor (./lib/dgram-floor.ts: a bare Node receiver with one UDP socket per camera doing only the RTP parse and
 * AES-GCM decryption of ./lib/floor.ts, and a sender shaped as the cameras). At each level, after the cameras
 * connected and settled, windows alternate ABBA: bridge (the cameras stream, the floor idles), floor (the cameras stay
 * connected but send no media, the floor's sender sends the same cameras' packets), floor, bridge. Each pair gives
 * both marginal costs from adjacent windows — the bridge's CPU minus its CPU with the same sessions silent, the floor's
 * minus its idle — so their ratio does not carry the machine's load changing between two measurements taken minutes
 * apart (before: the socket floor ran after the bridge was gone, at a different shape, one socket with 5 ms bursts, and
 * the bridge's idle was the no-camera level's; its ratio swung 0.87–2.66× between runs and levels).
 *
 * The knee is the first level with loss ≥ 1 % (packets the cameras sent that the bridge did not count, in the bridge
 * windows), a bridge event-loop delay median ≥ 20 ms, or the bridge at ≥ 95 % of the CPU it can use; when the
 * cameras' own process cannot send at the clip's rate any more, the run stops there and says so (the load generator,
 * not the bridge, is then the limit). The parse + decrypt floor without a socket (./lib/floor.ts) is measured in the
 * bridge's process; ./lib/receive-path.ts gives the bridge's receive path without the socket, replayed in one process
 * beside that floor.
 */
import type { WorkerCommand, WorkerEvent } from './lib/camera-worker.ts';
import { Child } from './lib/child.ts';
import { makeClip } from './lib/clip.ts';
import { DgramFloor, type DgramUsage } from './lib/dgram-floor.ts';
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
  /** Length of one measured window (a level has `pairs` windows of the bridge and as many of the socket floor). */
  measureMs: number;
  /** Pairs of windows per level, alternating ABBA: bridge, floor, floor, bridge, … (default 2). */
  pairs?: number;
  /** After the cameras' media is switched on or off, before a window opens (default 700 ms). */
  switchMs?: number;
  clipFrames?: number;
  /** Packets replayed by the socket-less measurement (0 skips it). */
  replayPackets: number;
  /** Bridge options for this run (e.g. mediaWorkers). */
  bridgeConfig?: Record<string, unknown>;
  /** Write a .cpuprofile of the bridge's main thread during the last level's first bridge window. */
  profile?: string;
}

/** One measured window: the bridge (cameras streaming, the socket floor idle) or the socket floor (the reverse). */
interface IngestWindow {
  kind: 'bridge' | 'floor';
  wallMs: number;
  bridgeCpuMs: number;
  bridgeSystemMs: number;
  bridgeMainMs: number;
  /** The media worker threads' CPU (none in one-worker mode). */
  bridgeMediaMs: number;
  /** Packets the bridge received, the cameras sent. */
  received: number;
  sent: number;
  camerasCpuMs: number;
  eldP50: number;
  eldP99: number;
  runQueueMs: number;
  floor: DgramUsage;
  floorSent: number;
}

export interface IngestLevel {
  cameras: number;
  receivedPerSecond: number;
  sentPerSecond: number;
  bridgeCore: number;
  /** The bridge's CPU in the floor windows (cameras connected, not streaming): what the idle sessions cost. */
  idleCore: number;
  usPerPacket: number;
  /** The bridge's CPU per packet minus its CPU in the adjacent windows with the same cameras connected but silent. */
  marginalUsPerPacket: number;
  /** Of the marginal figure, µs per packet: the kernel's share (system CPU, every thread), and by thread. */
  marginalSystemUs: number;
  marginalMainUs: number;
  marginalMediaUs: number;
  eldP50: number;
  eldP99: number;
  runQueue: number;
  lossPercent: number;
  camerasCore: number;
  /** The cameras' process sent less than 90 % of the clip's rate: the generator, not the bridge, limits. */
  generatorBehind: boolean;
  /** The bare Node dgram receiver at this level's shape (./lib/dgram-floor.ts), its windows alternating with the bridge's. */
  socketFloor?: { usPerPacket: number; systemUs: number; mainUs: number; packetsPerSecond: number; received: number; sent: number };
  /** Per pair: the bridge's marginal µs per packet ÷ the socket floor's, each against the other's window for its idle. */
  pairRatios: number[];
}

export async function runIngest(options: IngestOptions): Promise<BenchTable> {
  const clip = await makeClip(1000, options.clipFrames);
  const pairs = options.pairs ?? 2;
  const switchMs = options.switchMs ?? 700;
  // Silences of several windows (the floor's) must not end the cameras' sessions.
  const bridgeConfig = { mediaTimeoutMs: 120_000, ...options.bridgeConfig };
  const bridge = new Child<TargetCommand, TargetEvent>(new URL('./lib/target.ts', import.meta.url), {
    env: { ...process.env, BENCH_TARGET: 'bridge', BENCH_BRIDGE_CONFIG: JSON.stringify(bridgeConfig) },
  });
  const cameras = new Child<WorkerCommand, WorkerEvent>(new URL('./lib/camera-worker.ts', import.meta.url));
  const socketFloor = DgramFloor.start();
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
    // One window: counters reset, `during` runs, counters read.
    const window = async (kind: IngestWindow['kind'], during: () => Promise<number>): Promise<IngestWindow> => {
      const [r0, s0] = [await received(), await sent()];
      await usage(); // resets the bridge's counters
      await socketFloor.usage();
      const floorSent = await during();
      const u = await usage();
      const f = await socketFloor.usage();
      const [r1, s1] = [await received(), await sent()];
      return {
        kind,
        wallMs: u.wallMs,
        bridgeCpuMs: u.cpuMs,
        bridgeSystemMs: u.systemMs,
        bridgeMainMs: u.mainCpuMs,
        bridgeMediaMs: u.mediaThreads.reduce((a, t) => a + t.cpuMs, 0),
        received: r1.received - r0.received,
        sent: s1.packetsSent - s0.packetsSent,
        camerasCpuMs: s1.cpuMs - s0.cpuMs,
        eldP50: u.eldP50,
        eldP99: u.eldP99,
        runQueueMs: u.runQueueMs,
        floor: f,
        floorSent,
      };
    };
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
        await socketFloor.sockets(target);
      }
      await sleep(options.settleMs);
      if (target === 0) {
        const w = await window('bridge', async () => (await sleep(options.measureMs), 0));
        idleCpuPerMs = w.bridgeCpuMs / w.wallMs;
        levels.push({ ...emptyLevel(0), bridgeCore: idleCpuPerMs, idleCore: idleCpuPerMs, eldP50: w.eldP50, eldP99: w.eldP99, runQueue: w.runQueueMs / w.wallMs });
        continue;
      }
      // ABBA: bridge, floor, floor, bridge, … — each window's partner gives the other process's idle CPU.
      const last = index === options.levels.length;
      const windows: IngestWindow[] = [];
      for (let k = 0; k < 2 * pairs; k++) {
        const kind = k % 4 === 0 || k % 4 === 3 ? 'bridge' : 'floor';
        const on = kind === 'bridge';
        if (k > 0 && windows.at(-1)!.kind !== kind) {
          cameras.send({ cmd: 'media', on });
          await sleep(switchMs);
        }
        windows.push(
          await window(kind, async () => {
            if (kind === 'floor') return socketFloor.send({ cameras: target, packetsPerSecond: nominalPerCamera, fps: clip.fps, ms: options.measureMs });
            if (last && options.profile && k === 0) {
              bridge.send({ cmd: 'profile', ms: options.measureMs, path: options.profile });
              await bridge.next('profiled', options.measureMs + 60_000);
            } else await sleep(options.measureMs);
            return 0;
          }),
        );
      }
      if (windows.at(-1)!.kind !== 'bridge') cameras.send({ cmd: 'media', on: true });
      const level = summarise(target, windows, nominalPerCamera);
      levels.push(level);
      const cores = (await usage()).cores;
      if (level.lossPercent >= 1 || level.eldP50 >= 20 || level.bridgeCore >= 0.95 * cores || level.generatorBehind) {
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
    await socketFloor.close();
    await clip.remove();
  }
  if (options.replayPackets > 0) replay = await measureReceivePath({ packets: options.replayPackets, passes: 11 });

  const floorUs = floor?.usPerPacket ?? NaN;
  const rows = levels.map((l) => [
    String(l.cameras),
    fmtInt(l.receivedPerSecond),
    `${fmt(l.bridgeCore * 100, 0)}%`,
    l.cameras > 0 ? `${fmt(l.idleCore * 100, 0)}%` : '',
    fmt(l.usPerPacket, 0),
    fmt(l.marginalUsPerPacket, 0),
    fmtRatio(l.marginalUsPerPacket / floorUs),
    fmt(l.socketFloor?.usPerPacket, 0),
    l.cameras > 0 ? `${fmt(l.marginalMainUs + l.marginalMediaUs, 0)} · ${fmt(l.marginalUsPerPacket - l.marginalMainUs - l.marginalMediaUs, 0)} · ${fmt(l.marginalSystemUs, 0)}` : '',
    l.cameras > 0 ? `${fmt(l.socketFloor?.mainUs, 0)} · ${fmt((l.socketFloor?.usPerPacket ?? NaN) - (l.socketFloor?.mainUs ?? NaN), 0)} · ${fmt(l.socketFloor?.systemUs, 0)}` : '',
    l.pairRatios.length > 0 ? `${fmtRatio(mean(l.pairRatios))} (${l.pairRatios.map((r) => fmt(r, 2)).join(' · ')})` : '',
    `${fmt(l.eldP50, 1)} / ${fmt(l.eldP99, 1)}`,
    `${fmt(l.runQueue * 100, 0)}%`,
    l.cameras > 0 ? fmt(l.lossPercent, 2) : '',
    l.cameras > 0 ? `${fmt(l.camerasCore * 100, 0)}%` : '',
    l === knee ? (l.generatorBehind ? 'cameras behind' : 'knee') : '',
  ]);
  const withCameras = levels.filter((l) => l.cameras > 0 && Number.isFinite(l.marginalUsPerPacket));
  const capacity = knee ? levels[levels.indexOf(knee) - 1] : levels.at(-1);
  if (replay) {
    const r = replay;
    const lo = Math.min(...r.ratios);
    const hi = Math.max(...r.ratios);
    rows.push([
      'replayed, no socket',
      fmtInt(r.packets),
      '',
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
      '',
      '',
      `floor passes beside it: ${fmt(r.floorUs, 1)} µs; pairs ${fmt(lo, 2)}–${fmt(hi, 2)}×, all passes' CPU ${fmtRatio(r.totalRatio)}; main thread ${fmt(r.replay.mainUs, 1)} vs ${fmt(r.floor.mainUs, 1)} µs (${fmtRatio(r.mainRatio)}), helper threads ${fmt(r.replay.helperUs, 1)} vs ${fmt(r.floor.helperUs, 1)} µs; heap ${fmtInt(r.replay.heapBytes)} vs ${fmtInt(r.floor.heapBytes)} B/packet`,
    ]);
  }
  if (floor) rows.push(['floor: parse + AES-GCM', '', '', '', fmt(floor.usPerPacket, 1), fmt(floor.usPerPacket, 1), '1.00×', '', '', '', '', '', '', '', '', `Buffer key: ${fmt(floor.usPerPacketBufferKey, 1)} µs`]);
  // The per-packet cost at the busiest level the bridge took (fixed costs per wake-up weigh least there).
  const best = capacity && capacity.cameras > 0 ? capacity : withCameras.at(-1);
  const perCamera = clip.packetsPerSecond;
  const perCore = best ? 1e6 / best.marginalUsPerPacket / perCamera : NaN;
  notes.unshift(
    `Clip: ${fmt(clip.kbps, 0)} kbit/s VP8 at ${clip.fps} fps (${fmt(perCamera, 0)} packets/s per camera), ${clip.method}. Each level settles ${options.settleMs} ms, then ${pairs} pairs of ${options.measureMs} ms windows alternate ABBA (bridge, socket floor, socket floor, bridge, …; ${switchMs} ms after each switch before a window opens): in a bridge window the cameras stream and the socket floor's processes idle, in a floor window the cameras stay connected but send no media and the floor's sender sends. Level 0 is the bridge with no camera.`,
    `"µs/pkt" is the bridge process's CPU (every thread, media workers included) per packet received in its windows; "marginal" subtracts the bridge's CPU in the floor windows of the same level, where the same cameras are connected but silent ("idle sessions": ICE consent, RTCP, timers; what a connected camera costs without media), so it is the CPU per received packet, as the floors are. The two "event loop(s) · other threads · kernel" columns split each marginal figure by thread: the threads that run JavaScript (the bridge's main thread and media workers; the floor's one thread), the rest of the process (V8's GC and compiler helper threads, libuv's), and, overlapping both, the kernel's share (system CPU: the socket's receive, wake-ups).`,
    `"× floor" divides the marginal figure by the floor measured inside the bridge's process in this run (${fmt(floorUs, 1)} µs: RTP header parse + AES-128-GCM decrypt with a KeyObject; the same loop with the key as a Buffer, as werift did before its patch: ${fmt(floor?.usPerPacketBufferKey, 1)} µs). The floor has no socket; the "replayed" row is the bridge's own receive path without the socket (./lib/receive-path.ts), and its "× floor" is the median over ${replay?.ratios.length ?? 0} pairs of a replay pass ÷ the floor pass beside it in that same process, the order alternating (replay first, then floor first), after ${replay?.warmupPairs ?? 0} pairs not counted (V8 still compiling the path on its helper threads); each pass goes over the recording ${replay?.repeat ?? 1}× (the floor over as many packets), both fed in chunks of 200 with a turn of the loop between. Its last column splits the two by thread (the main thread's JavaScript; the rest: V8's helper threads, GC and compilers) and gives the heap bytes each packet allocates, garbage included (V8's sampling heap profiler): what the replay leaves for the scavenger beyond the floor's decipher objects is what its helper-thread CPU pays.`,
    `Two floors, both measured in this run. "× floor" is the issue's goal (≤ 2×): the bridge's cost per packet against a bare loop that parses and decrypts, with no socket. "× socket floor" is against a bare Node process (./lib/dgram-floor.ts) that receives the level's cameras as the bridge does, one UDP socket per camera, each camera a burst of one frame's packets every 1/${clip.fps} s from a sender process (phases spread over the frame interval), and does only that parse and decryption: one epoll wake-up per burst, one event-loop turn and one recvmsg per datagram, a cost no JavaScript bridge with a socket per peer avoids. Its windows alternate with the bridge's at the same level, and each window's partner gives the other process's idle CPU; the column gives the mean of the ${pairs} pair ratios (each pair's ratio in brackets). ${goalNote(replay, floorUs, withCameras)}`,
    `Knee: ${knee ? [knee.lossPercent >= 1 && `loss ${fmt(knee.lossPercent, 1)} %`, knee.eldP50 >= 20 && `event-loop delay p50 ${fmt(knee.eldP50, 0)} ms`, knee.generatorBehind && `the cameras' process sent ${fmtInt(knee.sentPerSecond)} of ${fmtInt(knee.cameras * perCamera)} packets/s (the load generator limits, not the bridge)`, knee.bridgeCore >= 0.95 && `bridge at ${fmt(knee.bridgeCore * 100, 0)} % of a core`].filter(Boolean).join(', ') : 'none within the levels tried'}. Cameras per node on this machine: ${capacity && capacity.cameras > 0 ? capacity.cameras : 'below the first level'}${Number.isFinite(perCore) ? `; at ~${fmt(best!.marginalUsPerPacket, 0)} µs per packet one dedicated core would take ~${fmtInt(perCore)} such cameras` : ''}.`,
  );
  const last = knee ?? levels.at(-1);
  const perPacket = `The bridge's marginal cost per packet is mostly the UDP socket (a bare Node receiver of the same cameras, one socket each: ~${fmt(last?.socketFloor?.usPerPacket, 0)} µs of the bridge's ${fmt(last?.marginalUsPerPacket, 0)} µs) and werift's path without it (replayed: ${fmt(replay?.usPerPacket, 0)} µs, of which SRTP decryption ~${fmt(replay?.srtpDecryptUs, 0)} µs, about the floor's ${fmt(floorUs, 0)} µs).`;
  return {
    id: 'ingest',
    title: 'Ingest: cameras at ~1 Mbit/s, 30 fps, no viewer',
    columns: ['cameras', 'pkts/s in', 'bridge CPU', 'idle sessions CPU', 'µs/pkt', 'marginal µs/pkt', '× floor', 'socket floor µs/pkt', 'bridge: event loops · other threads · kernel', 'socket floor: event loop · other threads · kernel', '× socket floor', 'loop delay p50/p99 ms', 'waiting for CPU', 'loss %', 'cameras CPU', ''],
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

/** One line per media-worker count (bench/lib/by-workers.ts): cameras per node and the ratio to the socket floor. */
export function ingestSummary(table: BenchTable): string {
  const data = table.data as { levels: IngestLevel[]; capacity?: IngestLevel };
  const ratios = data.levels.map((l) => mean(l.pairRatios)).filter(Number.isFinite);
  const range = ratios.length === 0 ? '–' : `${fmt(Math.min(...ratios), 2)}–${fmt(Math.max(...ratios), 2)}×`;
  return `${data.capacity?.cameras ?? 0} cameras per node (highest level taken), ${range} the socket floor (≤ 2× at ${ratios.filter((x) => x <= 2).length} of ${ratios.length} levels)`;
}

/** Which part of the goal (≤ 2× the parse + decrypt floor) this run meets, in words. */
function goalNote(replay: ReceivePathResult | undefined, floorUs: number, levels: IngestLevel[]): string {
  const replayed = replay ? replay.ratioToFloor : NaN;
  const live = levels.map((l) => l.marginalUsPerPacket / floorUs).filter(Number.isFinite);
  const socket = levels.map((l) => mean(l.pairRatios)).filter(Number.isFinite);
  const range = (xs: number[]) => {
    const [lo, hi] = [fmt(Math.min(...xs), 1), fmt(Math.max(...xs), 1)];
    return xs.length === 0 ? '–' : lo === hi ? `${lo}×` : `${lo}–${hi}×`;
  };
  const met = (x: number) => (x <= 2 ? 'met' : 'not met');
  return [
    Number.isFinite(replayed) &&
      `Goal, receive path without the socket (replayed): ${fmtRatio(replayed)} the floor (median of the pairs, every thread), ${met(replayed)}; all counted passes' CPU together ${fmtRatio(replay!.totalRatio)} (${met(replay!.totalRatio)}); the main thread alone ${fmtRatio(replay!.mainRatio)}.`,
    live.length > 0 && `With the UDP socket: ${range(live)} the floor, ${met(Math.min(...live))}; against the bare socket floor ${range(socket)} (mean of each level's pairs; ≤ 2× ${socket.filter((x) => x <= 2).length} of ${socket.length} levels).`,
  ]
    .filter(Boolean)
    .join(' ');
}

const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, x) => a + x, 0) / xs.length);

function emptyLevel(cameras: number): IngestLevel {
  return {
    cameras,
    receivedPerSecond: 0,
    sentPerSecond: 0,
    bridgeCore: 0,
    idleCore: 0,
    usPerPacket: NaN,
    marginalUsPerPacket: NaN,
    marginalSystemUs: NaN,
    marginalMainUs: NaN,
    marginalMediaUs: NaN,
    eldP50: 0,
    eldP99: 0,
    runQueue: 0,
    lossPercent: 0,
    camerasCore: 0,
    generatorBehind: false,
    pairRatios: [],
  };
}

/**
 * A level from its ABBA windows. Pair k is the k-th bridge window with the k-th floor window (adjacent in time): the
 * bridge's marginal CPU is its CPU in the bridge window minus its CPU rate in the floor window (same cameras, silent)
 * over the same wall time; the socket floor's is its receiver's CPU in the floor window minus its rate in the bridge
 * window (its sockets idle).
 */
function summarise(cameras: number, windows: IngestWindow[], nominalPerCamera: number): IngestLevel {
  const bridgeWs = windows.filter((w) => w.kind === 'bridge');
  const floorWs = windows.filter((w) => w.kind === 'floor');
  const sum = (ws: IngestWindow[], f: (w: IngestWindow) => number) => ws.reduce((a, w) => a + f(w), 0);
  const wall = sum(bridgeWs, (w) => w.wallMs);
  const got = sum(bridgeWs, (w) => w.received);
  const out = sum(bridgeWs, (w) => w.sent);
  type Get = (w: IngestWindow) => number;
  const bridgeMarginalMs = (b: IngestWindow, f: IngestWindow, get: Get = (w) => w.bridgeCpuMs) => get(b) - (get(f) / f.wallMs) * b.wallMs;
  const floorMarginalMs = (b: IngestWindow, f: IngestWindow, get: Get = (w) => w.floor.cpuMs) => get(f) - (get(b) / b.floor.wallMs) * f.floor.wallMs;
  const pairs = bridgeWs.map((b, k) => [b, floorWs[k]!] as const).filter(([, f]) => f !== undefined);
  const floorGot = sum(floorWs, (w) => w.floor.received);
  const bridgeUs = (get?: Get) => (pairs.reduce((a, [b, f]) => a + bridgeMarginalMs(b, f, get), 0) * 1000) / got;
  const floorUs = (get?: Get) => (pairs.reduce((a, [b, f]) => a + floorMarginalMs(b, f, get), 0) * 1000) / floorGot;
  const pairRatios = pairs.map(([b, f]) => (bridgeMarginalMs(b, f) / b.received) / (floorMarginalMs(b, f) / f.floor.received));
  return {
    cameras,
    receivedPerSecond: (got * 1000) / wall,
    sentPerSecond: (out * 1000) / wall,
    bridgeCore: sum(bridgeWs, (w) => w.bridgeCpuMs) / wall,
    idleCore: sum(floorWs, (w) => w.bridgeCpuMs) / sum(floorWs, (w) => w.wallMs),
    usPerPacket: (sum(bridgeWs, (w) => w.bridgeCpuMs) * 1000) / got,
    marginalUsPerPacket: bridgeUs(),
    marginalSystemUs: bridgeUs((w) => w.bridgeSystemMs),
    marginalMainUs: bridgeUs((w) => w.bridgeMainMs),
    marginalMediaUs: bridgeUs((w) => w.bridgeMediaMs),
    eldP50: Math.max(...bridgeWs.map((w) => w.eldP50)),
    eldP99: Math.max(...bridgeWs.map((w) => w.eldP99)),
    runQueue: sum(bridgeWs, (w) => w.runQueueMs) / wall,
    lossPercent: out > 0 ? Math.max(0, (1 - got / out) * 100) : 0,
    camerasCore: sum(bridgeWs, (w) => w.camerasCpuMs) / wall,
    generatorBehind: (out * 1000) / wall < 0.9 * cameras * nominalPerCamera,
    socketFloor: {
      usPerPacket: floorUs(),
      systemUs: floorUs((w) => w.floor.systemMs),
      mainUs: floorUs((w) => w.floor.mainCpuMs),
      packetsPerSecond: (floorGot * 1000) / sum(floorWs, (w) => w.floor.wallMs),
      received: floorGot,
      sent: sum(floorWs, (w) => w.floorSent),
    },
    pairRatios,
  };
}
