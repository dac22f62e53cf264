/**
 * 4. Connections: idle device connections held by one node (1k, 5k, 10k), each as a real device holds it — last
 * will (its offline card, retained), subscriptions to its down topic and to bridge cards (receiving the retained
 * bridge card), its online status card published retained with QoS 1. Memory per connection and connect rate.
 *
 * The bridge runs alone in a child process (started with --expose-gc) so its memory is measured alone: RSS and heap
 * after a full GC, per connection, against the same child before any device connected. Plain Aedes with the same
 * clients is measured the same way in the same run, as the baseline. A heap snapshot diff at the first level says
 * where the memory goes. Connections come from 127.0.0.2–11 (one loopback address would do for 10k, but a
 * per-address limit, if one is configured, would not see a flood from one address).
 */
import { Child } from './lib/child.ts';
import { MiniMqtt } from './lib/mini-mqtt.ts';
import type { BenchTable } from './lib/report.ts';
import { fmt, fmtInt, fmtRatio, ratio } from './lib/stats.ts';
import type { MemoryFigures, TargetCommand, TargetEvent } from './lib/target.ts';
import { openFileLimit } from './lib/util.ts';

type Mode = 'bridge' | 'aedes';
const LABELS: Record<Mode, string> = { bridge: 'tali bridge', aedes: 'plain Aedes 1.2' };

interface Level {
  connections: number;
  /** Clients the server counts at the measurement (its own internal clients included). */
  serverClients: number;
  memory: MemoryFigures;
  connectSeconds: number;
  added: number;
  failed: number;
}

interface HeapGroup {
  name: string;
  count: number;
  bytes: number;
}

async function connectDevice(port: number, i: number): Promise<MiniMqtt> {
  const id = `bench-c-${i}`;
  const status = (state: string) => JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state, model: 'bench', firmware: '0', sdk: 'bench' });
  const client = await MiniMqtt.connect({
    port,
    localAddress: `127.0.0.${2 + (i % 10)}`,
    clientId: id,
    keepaliveS: 60,
    will: { topic: `tali/v1/device/${id}/status`, payload: status('offline'), qos: 1, retain: true },
  });
  await client.subscribe([`tali/v1/device/${id}/down`, 'tali/v1/bridge/+/status'], 1);
  await client.publishAcked(`tali/v1/device/${id}/status`, status('online'), 1, true);
  return client;
}

async function measureMode(mode: Mode, levels: number[], window: number, heapAt: [number, number] | undefined) {
  const child = new Child<TargetCommand, TargetEvent>(new URL('./lib/target.ts', import.meta.url), {
    execArgv: ['--expose-gc'],
    env: { ...process.env, BENCH_TARGET: mode },
  });
  const clients: MiniMqtt[] = [];
  const results: Level[] = [];
  // Idle, but alive: each device pings within its 60 s keepalive, as a real one does.
  const pinger = setInterval(() => {
    for (const c of clients) c.ping();
  }, 20_000);
  let heap: { base: HeapGroup[]; at: HeapGroup[]; n: number } | undefined;
  try {
    const { port } = await child.next('ready', 30_000);
    const gcMemory = async () => {
      child.send({ cmd: 'gc' });
      return child.next('memory', 60_000);
    };
    const base = await gcMemory();
    results.push({ connections: 0, serverClients: base.clients, memory: base.memory, connectSeconds: 0, added: 0, failed: 0 });
    let firstHeap: { top: HeapGroup[]; n: number } | undefined;
    for (const level of levels) {
      const t0 = performance.now();
      let next = clients.length;
      let failed = 0;
      const workers = Array.from({ length: window }, async () => {
        while (next < level) {
          const i = next++;
          try {
            clients.push(await connectDevice(port, i));
          } catch {
            failed++;
          }
        }
      });
      const before = clients.length;
      await Promise.all(workers);
      const connectSeconds = (performance.now() - t0) / 1000;
      const measured = await gcMemory();
      results.push({ connections: clients.length, serverClients: measured.clients, memory: measured.memory, connectSeconds, added: clients.length - before, failed });
      if (heapAt?.includes(level)) {
        child.send({ cmd: 'heap' });
        const top = (await child.next('heap', 300_000)).top;
        if (firstHeap === undefined) firstHeap = { top, n: clients.length };
        else heap = { base: firstHeap.top, at: top, n: clients.length - firstHeap.n };
      }
    }
  } finally {
    clearInterval(pinger);
    for (const c of clients) c.socket.destroy();
    await child.close();
  }
  return { results, heap };
}

export interface ConnectionsOptions {
  levels: number[];
  /** Plain Aedes (the baseline) is measured up to this many connections. */
  baselineUpTo: number;
  /** Connections being set up at once. */
  window: number;
  /** Heap snapshots in a separate small run at these two counts: the difference, per connection, by constructor. */
  heapAt?: [number, number];
}

export async function runConnections(options: ConnectionsOptions): Promise<BenchTable> {
  const notes: string[] = [];
  // Both ends of every connection are on this machine, and this process holds the client ends.
  const limit = await openFileLimit();
  const cap = Math.max(100, limit - 500);
  const levels = options.levels.filter((n) => n <= cap);
  if (levels.length < options.levels.length) {
    notes.push(`Levels above ${cap} skipped: open-file limit ${limit} (raise with ulimit -n).`);
  }
  const modes: Mode[] = ['bridge', 'aedes'];
  const measured = new Map<Mode, Awaited<ReturnType<typeof measureMode>>>();
  // One server at a time: each is measured alone on the machine.
  measured.set('bridge', await measureMode('bridge', levels, options.window, undefined));
  measured.set('aedes', await measureMode('aedes', levels.filter((n) => n <= options.baselineUpTo), options.window, undefined));
  const heap = options.heapAt ? (await measureMode('bridge', options.heapAt, options.window, options.heapAt)).heap : undefined;

  const rows: string[][] = [];
  // Per connection: against the same process before any device connected (memory a node must budget per device).
  const per = (l: Level, base: Level, key: keyof MemoryFigures) => (l.memory[key] - base.memory[key]) / Math.max(1, l.connections);
  const data: Record<string, unknown> = {};
  let tcpDelta = 0;
  for (const level of levels) {
    for (const mode of modes) {
      const m = measured.get(mode);
      const base = m?.results[0];
      const l = m?.results.find((r) => r.connections >= level * 0.99 && r.connections <= level);
      if (!m || !base || !l) continue;
      const a = measured.get('aedes')?.results.find((r) => r.connections === l.connections);
      const aBase = measured.get('aedes')?.results[0];
      const rssPer = per(l, base, 'rss');
      tcpDelta = Math.max(tcpDelta, Math.abs(l.memory.tcpMemPages - base.memory.tcpMemPages));
      data[`${mode}:${level}`] = {
        connections: l.connections,
        rssPerConnection: rssPer,
        heapPerConnection: per(l, base, 'heapUsed'),
        heapReservedPerConnection: per(l, base, 'heapTotal'),
        externalPerConnection: per(l, base, 'external'),
        connectRate: l.added / l.connectSeconds,
        failed: l.failed,
        rssMB: l.memory.rss / 1e6,
      };
      rows.push([
        fmtInt(l.connections),
        LABELS[mode],
        fmt(l.memory.rss / 1e6, 0),
        fmt(rssPer / 1024, 1),
        fmt(per(l, base, 'heapUsed') / 1024, 1),
        fmt(per(l, base, 'heapTotal') / 1024, 1),
        fmt(per(l, base, 'external') / 1024, 1),
        fmtInt(l.added / l.connectSeconds),
        mode === 'aedes' || !a || !aBase ? 'baseline' : fmtRatio(ratio(rssPer, per(a, aBase, 'rss'))),
        `${l.failed} / ${fmtInt(l.connections - (l.serverClients - base.serverClients))}`,
      ]);
    }
  }
  if (levels.some((n) => n > options.baselineUpTo)) notes.push(`Plain Aedes measured up to ${fmtInt(options.baselineUpTo)} connections (its connect time grows with the square of the count; see below).`);

  // Heap snapshot diff between two counts: what one more connection keeps alive, by constructor.
  let breakdown: { name: string; bytesPerConnection: number; perConnection: number }[] = [];
  if (heap) {
    const base = new Map(heap.base.map((g) => [g.name, g]));
    breakdown = heap.at
      .map((g) => ({
        name: g.name,
        bytesPerConnection: (g.bytes - (base.get(g.name)?.bytes ?? 0)) / heap.n,
        perConnection: (g.count - (base.get(g.name)?.count ?? 0)) / heap.n,
      }))
      .filter((g) => g.bytesPerConnection > 50)
      .sort((x, y) => y.bytesPerConnection - x.bytesPerConnection)
      .slice(0, 12);
    notes.push(
      `Heap per connection by constructor (snapshot difference between ${fmtInt(options.heapAt?.[0])} and ${fmtInt(options.heapAt?.[1])} connections, self sizes): ` +
        breakdown.map((g) => `${g.name} ${fmt(g.bytesPerConnection / 1024, 2)} KB (${fmt(g.perConnection, 1)}×)`).join(', ') +
        '.',
    );
  }
  const top = levels.at(-1) as number;
  const first = levels[0] as number;
  type Fig = { rssPerConnection: number; heapPerConnection: number; heapReservedPerConnection: number; externalPerConnection: number; connectRate: number };
  const t = data[`bridge:${top}`] as Fig | undefined;
  const t1 = data[`bridge:${first}`] as Fig | undefined;
  const aTop = Math.max(...levels.filter((n) => n <= options.baselineUpTo));
  const ae = data[`aedes:${aTop}`] as Fig | undefined;
  const ae1 = data[`aedes:${first}`] as Fig | undefined;
  notes.push(`Idle sockets hold no kernel buffer memory: /proc/net/sockstat TCP memory moved by at most ${tcpDelta} pages (4 KiB) over the whole run.`);
  notes.unshift(
    `Each connection: CONNECT with a retained offline will, SUBSCRIBE to its down topic and bridge/+/status (QoS 1, gets the retained bridge card), PUBLISH its online card retained QoS 1; then idle (keepalive 60 s). ${options.window} set up at once; allowAnonymous (no scrypt per device: with real secrets the connect rate is bound by scrypt, ~${'50'} ms CPU per first login).`,
    '"failed / dropped": connections refused while connecting / connected ones the server no longer counted when memory was measured (should be 0 / 0).',
    'Memory after a full GC in the server process, minus the same process before any device connected, divided by connections; "heap reserved" is V8\'s heapTotal (pages held for the heap), "external" is Buffers and other off-heap memory V8 tracks.',
  );
  return {
    id: 'connections',
    title: 'Connections: idle devices held by one node',
    columns: ['connections', 'server', 'RSS MB', 'RSS KB/conn', 'heap used KB/conn', 'heap reserved KB/conn', 'external KB/conn', 'connects/s', 'RSS ratio', 'failed / dropped'],
    rows,
    notes,
    bottleneck:
      t && t1
        ? `Memory and CPU per connect, no longer the retained scan: tali's connect rate holds from ${fmtInt(t1.connectRate)}/s at ${fmtInt(first)} devices to ${fmtInt(t.connectRate)}/s at ${fmtInt(top)}${ae && ae1 ? `, while plain Aedes falls from ${fmtInt(ae1.connectRate)}/s to ${fmtInt(ae.connectRate)}/s at ${fmtInt(aTop)}` : ''}: Aedes's in-memory persistence answers every SUBSCRIBE by testing every retained message against the filter (aedes-persistence asyncPersistence.js retainedMessagesByPattern), and every device retains a status card and subscribes twice, so N devices cost O(N²); tali indexes retained messages by topic level (src/broker/retained-index.ts), so a SUBSCRIBE visits only what its filter can match. What is left is CPU per connect in one event loop (CONNECT, the connection guards and ACL, three packets, the answerer decoding each status card) with the load generator on the other core. Memory: ~${fmt(t.rssPerConnection / 1024, 0)} KB RSS per idle device at ${fmtInt(top)}, of which ~${fmt(t.heapPerConnection / 1024, 1)} KB live JS heap (Aedes Client, its parser and write state, the net.Socket, the will and retained card, subscriptions) and ~${fmt(t.heapReservedPerConnection / 1024, 0)} KB heap reserved; ${ae ? `plain Aedes ~${fmt(ae.rssPerConnection / 1024, 0)} KB at ${fmtInt(aTop)}` : ''}. That is below the ~65 KB Aedes users report; this measures idle devices only, and that figure presumably includes the stream buffers of busy connections (and older Aedes/websocket-stream versions), not measured here.`
        : undefined,
    data: { levels: data, heapBreakdown: breakdown },
  };
}
