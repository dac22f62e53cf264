/**
 * The server under test, alone in a child process so that its CPU and memory are measured without the load
 * generator's. Modes:
 *
 *   tali-broker  tali's embedded broker as the bridge composes it: Aedes behind the password authenticator and the
 *                per-role access policy, TCP listener with Nagle off (no answerer: nothing else consumes messages)
 *   aedes        plain Aedes 1.2 with its defaults, on a TCP server with Nagle off (what tali adds is the difference)
 *   bridge       the whole bridge (Bridge.start): broker, answerer, relay, HTTP, as `tali start` runs it; options from
 *                BENCH_BRIDGE_CONFIG (JSON), e.g. {"mediaWorkers":1}
 *   fleet        the whole bridge on the data directory BENCH_DATA_DIR, with its default client limits and no
 *                anonymous clients: a restart of a deployed bridge, for bench/fleet.ts
 *
 * IPC: { cmd: 'usage' } → cpu, memory, event-loop delay; { cmd: 'gc' } → memory after a full GC;
 * { cmd: 'heap' } → a heap snapshot summarised by constructor; { cmd: 'workerHeap' } → the same per media worker
 * thread; { cmd: 'stop' }. Start with --expose-gc for 'gc'.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { createHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { Worker as WorkerThread } from 'node:worker_threads';
import type { BenchBridge } from './bridge.ts';

/**
 * The bridge's worker threads, for 'workerHeap': node:worker_threads' Worker replaced (before the bridge is imported)
 * by a subclass that keeps each live instance; syncBuiltinESMExports makes ES imports of the module see it.
 */
const threads = new Set<WorkerThread>();
{
  const workerThreads = createRequire(import.meta.url)('node:worker_threads') as { Worker: typeof WorkerThread };
  const Base = workerThreads.Worker;
  workerThreads.Worker = class Tracked extends Base {
    constructor(...args: ConstructorParameters<typeof Base>) {
      super(...args);
      threads.add(this);
      this.once('exit', () => threads.delete(this));
    }
  };
  syncBuiltinESMExports();
}

export type TargetMode = 'tali-broker' | 'aedes' | 'bridge' | 'fleet';
export type TargetCommand =
  | { cmd: 'usage' }
  | { cmd: 'gc' }
  | { cmd: 'heap' }
  /** Each media worker thread's heap snapshot (Worker.getHeapSnapshot()), summarised as 'heap' is. */
  | { cmd: 'workerHeap' }
  | { cmd: 'stop' }
  | { cmd: 'addViewers'; ids: string[] }
  | { cmd: 'relayStats' }
  /** Samples this process's main thread with V8's CPU profiler for `ms` and writes a .cpuprofile to `path`. */
  | { cmd: 'profile'; ms: number; path: string }
  /** The bare-Node floor of receiving a packet (./floor.ts), measured in this process. */
  | { cmd: 'floor' };
export interface RelayStats {
  viewers: number;
  connectedViewers: number;
  /** RTP packets the relay handed to viewers' senders, in total. */
  forwarded: number;
  /** RTP packets received from cameras, in total. */
  received: number;
  sessions: number;
}
export interface MemoryFigures {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** Kernel TCP buffer memory, pages (from /proc/net/sockstat), machine-wide. */
  tcpMemPages: number;
}
export type TargetEvent =
  | { type: 'ready'; port: number; adminSecret?: string; pid: number }
  | {
      type: 'usage';
      cpuMs: number;
      systemMs: number;
      /** The main (event-loop) thread's CPU alone. */
      mainCpuMs: number;
      wallMs: number;
      runQueueMs: number;
      eldP50: number;
      eldP99: number;
      eldMax: number;
      memory: MemoryFigures;
      clients: number;
      cores: number;
      /** Per media worker thread (bridge mode with mediaWorkers ≥ 2): CPU and time runnable but waiting for a CPU. */
      mediaThreads: ThreadTimes[];
      /**
       * A command's round trip from the main thread to the media workers and back (MediaPlane.refresh(), sampled every
       * 50 ms while worker threads run), ms: what a camera's open or a viewer's serve waits for in the workers' queues.
       * NaN with no worker thread.
       */
      workerRttP50: number;
      workerRttP99: number;
    }
  | { type: 'memory'; memory: MemoryFigures; clients: number }
  | { type: 'heap'; top: { name: string; count: number; bytes: number }[]; totalBytes: number }
  | { type: 'workerHeap'; workers: { name: string; top: { name: string; count: number; bytes: number }[]; totalBytes: number }[] }
  | { type: 'stopped' }
  | { type: 'viewers'; secrets: Record<string, string> }
  | { type: 'relayStats'; stats: RelayStats }
  | { type: 'profiled'; path: string }
  | { type: 'floor'; floor: import('./floor.ts').FloorResult }
  | { type: 'error'; message: string };

const mode = (process.env.BENCH_TARGET ?? 'tali-broker') as TargetMode;
const send = (e: TargetEvent) => process.send?.(e);
const eld = monitorEventLoopDelay({ resolution: 5 });
eld.enable();
let lastCpu = process.cpuUsage();
let lastMainCpu = process.threadCpuUsage();
let lastRunQueueMs = 0;

/** Time the main (event-loop) thread was runnable but waiting for a CPU, from /proc/thread-self/schedstat. */
export function runQueueMs(): number {
  try {
    // Synchronous on purpose: fs/promises would open the file from a thread-pool thread.
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1] ?? 0) / 1e6;
  } catch {
    return Number.NaN;
  }
}
export interface ThreadTimes {
  name: string;
  cpuMs: number;
  waitMs: number;
}

/** CPU and run-queue wait so far of this process's media worker threads (OS thread names tali-media-N). */
function mediaThreadTimes(): ThreadTimes[] {
  try {
    return readdirSync('/proc/self/task').flatMap((tid) => {
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      if (!name.startsWith('tali-media')) return [];
      const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
      return [{ name, cpuMs: (run ?? 0) / 1e6, waitMs: (wait ?? 0) / 1e6 }];
    });
  } catch {
    return [];
  }
}
let lastThreads = new Map<string, ThreadTimes>();
const workerRtt = createHistogram();

/** Times MediaPlane.refresh() every 50 ms while media worker threads run (one at a time: a slow one delays the next). */
function sampleWorkerRtt(media: import('../../src/media/plane.ts').MediaPlane): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const once = async () => {
    const workers = (media as { threads?: number }).threads ?? 0;
    if (workers > 0) {
      const t0 = performance.now();
      await media.refresh();
      workerRtt.record(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    }
    if (!stopped) timer = setTimeout(() => void once(), 50);
  };
  void once();
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
let lastWall = performance.now();
let clients = () => 0;
let stop: () => Promise<void> = async () => {};
let bridge: BenchBridge | undefined;
/** Forwarded packets of viewers already closed, so totals never go down. */
let forwardedGone = 0;
let receivedGone = 0;

async function memory(): Promise<MemoryFigures> {
  const m = process.memoryUsage();
  const sockstat = await readFile('/proc/net/sockstat', 'utf8').catch(() => '');
  const tcpMemPages = Number(/TCP:.*\bmem (\d+)/.exec(sockstat)?.[1] ?? NaN);
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, tcpMemPages };
}

async function start(): Promise<void> {
  // Each mode imports only what it runs: child start-up is dominated by loading (and type-stripping) modules.
  if (mode === 'bridge') {
    const { startBenchBridge, withoutClientLimits } = await import('./bridge.ts');
    const extra = JSON.parse(process.env.BENCH_BRIDGE_CONFIG ?? '{}') as Record<string, unknown>;
    const bb = await startBenchBridge(withoutClientLimits({ allowAnonymous: true, ...extra }));
    bridge = bb;
    bb.bridge.relay.on('viewer', (v) => v.once('closed', () => (forwardedGone += v.packetsSent)));
    bb.bridge.answerer.on('session', (s) => s.once('closed', () => (receivedGone += s.stats.tracks.reduce((a, t) => a + t.packets, 0))));
    clients = () => bb.bridge.broker.connectedClients;
    const sampler = sampleWorkerRtt(bb.bridge.services.media);
    stop = async () => {
      sampler.stop();
      await bb.close();
    };
    send({ type: 'ready', port: bb.bridge.mqttPort, pid: process.pid });
    return;
  }
  if (mode === 'fleet') {
    const { startBenchBridge } = await import('./bridge.ts');
    const bb = await startBenchBridge({ dataDir: process.env.BENCH_DATA_DIR });
    clients = () => bb.bridge.broker.connectedClients;
    stop = () => bb.close();
    send({ type: 'ready', port: bb.bridge.mqttPort, pid: process.pid });
    return;
  }
  if (mode === 'aedes') {
    const { Aedes } = await import('aedes');
    const aedes = await Aedes.createBroker();
    const server = createServer({ noDelay: true }, (socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    clients = () => aedes.connectedClients;
    stop = async () => {
      for (const c of Object.values((aedes as unknown as { clients: Record<string, { close(): void }> }).clients)) c.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    };
    send({ type: 'ready', port: (server.address() as { port: number }).port, pid: process.pid });
    return;
  }
  const [{ pino }, { Broker }, { TcpListener }, { Topics }, { AccessPolicy }, { passwordAuthenticator }, { CredentialStore }] = await Promise.all([
    import('pino'),
    import('../../src/broker/broker.ts'),
    import('../../src/broker/tcp.ts'),
    import('../../src/protocol/topics.ts'),
    import('../../src/security/access.ts'),
    import('../../src/security/authenticator.ts'),
    import('../../src/security/credentials.ts'),
  ]);
  const dataDir = await mkdtemp(join(tmpdir(), 'tali-bench-broker-'));
  const credentials = new CredentialStore(dataDir);
  const adminSecret = await credentials.add('bench-admin', 'admin');
  // As the bridge composes it (src/embedded-broker.ts), with the capacity limits lifted and every per-packet guard kept.
  const { withoutClientLimits } = await import('./bridge.ts');
  const lifted = withoutClientLimits() as Record<string, number>;
  const limits = Object.fromEntries(
    ['maxConnections', 'maxConnectionsPerAddress', 'maxPendingConnections', 'maxPendingConnectionsPerAddress', 'publishRate', 'publishBurst'].flatMap((k) => (lifted[k] ? [[k, lifted[k]]] : [])),
  );
  const broker = await Broker.create({
    id: 'bench',
    authenticate: passwordAuthenticator({ store: credentials, allowAnonymous: true }),
    access: new AccessPolicy(new Topics('tali')),
    topics: new Topics('tali'),
    logger: pino({ level: 'silent' }),
    limits,
  });
  const tcp = new TcpListener(broker, {});
  const port = await tcp.listen('127.0.0.1', 0);
  clients = () => broker.connectedClients;
  stop = async () => {
    await tcp.close(200);
    await broker.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  send({ type: 'ready', port, adminSecret, pid: process.pid });
}

/** Heap snapshot → self size and count per constructor name (objects) or per node type (strings, code, …). */
async function heapSummary(): Promise<Extract<TargetEvent, { type: 'heap' }>> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-bench-heap-'));
  const file = writeHeapSnapshot(join(dir, 'h.heapsnapshot'));
  const text = await readFile(file, 'utf8');
  await rm(dir, { recursive: true, force: true });
  return { type: 'heap', ...summarizeSnapshot(text) };
}

async function workerHeaps(): Promise<Extract<TargetEvent, { type: 'workerHeap' }>> {
  const workers = [];
  for (const worker of threads) {
    const chunks: Buffer[] = [];
    for await (const chunk of await worker.getHeapSnapshot()) chunks.push(chunk as Buffer);
    workers.push({ name: `worker ${worker.threadId}`, ...summarizeSnapshot(Buffer.concat(chunks).toString('utf8')) });
  }
  return { type: 'workerHeap', workers };
}

function summarizeSnapshot(text: string): { top: { name: string; count: number; bytes: number }[]; totalBytes: number } {
  const snap = JSON.parse(text) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const stride = fields.length;
  const iType = fields.indexOf('type');
  const iName = fields.indexOf('name');
  const iSize = fields.indexOf('self_size');
  const groups = new Map<string, { count: number; bytes: number }>();
  let totalBytes = 0;
  for (let i = 0; i < snap.nodes.length; i += stride) {
    const type = types[snap.nodes[i + iType] as number] as string;
    const size = snap.nodes[i + iSize] as number;
    totalBytes += size;
    const key = type === 'object' || type === 'closure' ? `${snap.strings[snap.nodes[i + iName] as number]}${type === 'closure' ? ' (closure)' : ''}` : `(${type})`;
    const g = groups.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    groups.set(key, g);
  }
  const top = [...groups].map(([name, g]) => ({ name, ...g })).sort((a, b) => b.bytes - a.bytes).slice(0, 40);
  return { top, totalBytes };
}

process.on('message', (m: TargetCommand) => {
  const run = async () => {
    if (m.cmd === 'usage') {
      const cpu = process.cpuUsage(lastCpu);
      const mainCpu = process.threadCpuUsage(lastMainCpu);
      const now = performance.now();
      const rq = runQueueMs();
      const threads = mediaThreadTimes();
      send({
        type: 'usage',
        cpuMs: (cpu.user + cpu.system) / 1000,
        systemMs: cpu.system / 1000,
        mainCpuMs: (mainCpu.user + mainCpu.system) / 1000,
        wallMs: now - lastWall,
        runQueueMs: rq - lastRunQueueMs,
        eldP50: eld.percentile(50) / 1e6,
        eldP99: eld.percentile(99) / 1e6,
        eldMax: eld.max / 1e6,
        memory: await memory(),
        clients: clients(),
        cores: availableParallelism(),
        mediaThreads: threads.map((t) => ({ name: t.name, cpuMs: t.cpuMs - (lastThreads.get(t.name)?.cpuMs ?? 0), waitMs: t.waitMs - (lastThreads.get(t.name)?.waitMs ?? 0) })),
        workerRttP50: workerRtt.count > 0 ? workerRtt.percentile(50) / 1000 : NaN,
        workerRttP99: workerRtt.count > 0 ? workerRtt.percentile(99) / 1000 : NaN,
      });
      workerRtt.reset();
      lastThreads = new Map(threads.map((t) => [t.name, t]));
      lastCpu = process.cpuUsage();
      lastMainCpu = process.threadCpuUsage();
      lastWall = now;
      lastRunQueueMs = rq;
      eld.reset();
    } else if (m.cmd === 'gc') {
      const gc = (globalThis as { gc?: () => void }).gc;
      for (let i = 0; i < 3; i++) gc?.();
      send({ type: 'memory', memory: await memory(), clients: clients() });
    } else if (m.cmd === 'heap') {
      send(await heapSummary());
    } else if (m.cmd === 'workerHeap') {
      send(await workerHeaps());
    } else if (m.cmd === 'addViewers') {
      const secrets: Record<string, string> = {};
      for (const id of m.ids) secrets[id] = (await bridge?.bridge.credentials.add(id, 'viewer', { replace: true })) ?? '';
      send({ type: 'viewers', secrets });
    } else if (m.cmd === 'relayStats') {
      await bridge?.bridge.services.media.refresh(); // media workers report their counters once a second otherwise
      const relay = bridge?.bridge.relay;
      const viewers = [...(relay?.viewers.values() ?? [])];
      const sessions = [...(bridge?.bridge.answerer.sessions.values() ?? [])];
      send({
        type: 'relayStats',
        stats: {
          viewers: viewers.length,
          connectedViewers: viewers.filter((v) => v.state === 'connected').length,
          forwarded: forwardedGone + viewers.reduce((a, v) => a + v.packetsSent, 0),
          received: receivedGone + sessions.reduce((a, s) => a + s.stats.tracks.reduce((b, t) => b + t.packets, 0), 0),
          sessions: sessions.length,
        },
      });
    } else if (m.cmd === 'profile') {
      const { Session } = await import('node:inspector/promises');
      const { writeFile } = await import('node:fs/promises');
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 500 });
      await session.post('Profiler.start');
      await new Promise((resolve) => setTimeout(resolve, m.ms));
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      await writeFile(m.path, JSON.stringify(profile));
      send({ type: 'profiled', path: m.path });
    } else if (m.cmd === 'floor') {
      const { measureFloor } = await import('./floor.ts');
      send({ type: 'floor', floor: measureFloor() });
    } else if (m.cmd === 'stop') {
      await stop();
      send({ type: 'stopped' });
    }
  };
  run().catch((err: Error) => send({ type: 'error', message: err.stack ?? err.message }));
});
process.on('disconnect', () => process.exit(0));
start().catch((err: Error) => {
  send({ type: 'error', message: err.stack ?? err.message });
  process.exit(1);
});
