/**
 * 3. Broker: messages per second and latency for 2 KB signaling-sized payloads, QoS 0 and 1, 1→1 and 100→100
 * publishers → subscribers, tali's embedded broker against Mosquitto (and plain Aedes, to separate what tali's
 * hooks cost from what Aedes costs), all running at once and measured in turn, round by round.
 *
 * Publisher i is device `bench-p-i` publishing on its own up topic; subscriber i (the bridge's admin role on tali,
 * anonymous under an equivalent ACL on Mosquitto) subscribes to that topic with QoS 1. Each pair keeps a window of
 * messages in flight: window 1 gives the latency figures; a wider window gives the throughput. The load generator
 * (bench/lib/mini-mqtt.ts) writes pre-encoded packets so its own CPU stays well below the brokers'.
 */
import type { BenchTable } from './lib/report.ts';
import { Child } from './lib/child.ts';
import { MiniMqtt, PreparedPublish } from './lib/mini-mqtt.ts';
import { startMosquitto, type Mosquitto } from './lib/mosquitto.ts';
import { fmt, fmtInt, fmtRatio, ratio, summarize, type Summary } from './lib/stats.ts';
import type { TargetCommand, TargetEvent } from './lib/target.ts';
import { sleep } from './lib/util.ts';

const PAYLOAD_BYTES = 2048;
type TargetName = 'tali' | 'aedes' | 'mosquitto';
const LABELS: Record<TargetName, string> = { tali: "tali's broker (Aedes + auth/ACL hooks)", aedes: 'plain Aedes 1.2', mosquitto: 'Mosquitto' };

interface Target {
  name: TargetName;
  port: number;
  cpuMs(): Promise<{ user: number; system: number }>;
  stop(): Promise<void>;
  pairs: Pair[];
}

interface Pair {
  pub: MiniMqtt;
  sub: MiniMqtt;
  topic: string;
  prepared: { 0: PreparedPublish; 1: PreparedPublish };
}

interface PhaseResult {
  received: number;
  seconds: number;
  latencies: number[];
  brokerCpu: number;
  brokerSys: number;
  loadCpu: number;
}

async function startTarget(name: 'tali' | 'aedes'): Promise<{ port: number; adminSecret?: string; child: Child<TargetCommand, TargetEvent> }> {
  const child = new Child<TargetCommand, TargetEvent>(new URL('./lib/target.ts', import.meta.url), {
    env: { ...process.env, BENCH_TARGET: name === 'tali' ? 'tali-broker' : 'aedes' },
  });
  const ready = await child.next('ready', 30_000);
  return { port: ready.port, adminSecret: ready.adminSecret, child };
}

function childCpu(child: Child<TargetCommand, TargetEvent>): () => Promise<{ user: number; system: number }> {
  const total = { user: 0, system: 0 };
  return async () => {
    child.send({ cmd: 'usage' });
    const u = await child.next('usage', 10_000);
    total.user += u.cpuMs - u.systemMs;
    total.system += u.systemMs;
    return { ...total };
  };
}

async function connectPairs(port: number, n: number, adminSecret: string | undefined): Promise<Pair[]> {
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61); // 'a' × 2048, as if JSON text
  const pairs: Pair[] = [];
  for (let i = 0; i < n; i++) {
    const id = `bench-p-${i}`;
    const topic = `tali/v1/device/${id}/up`;
    const pub = await MiniMqtt.connect({ port, clientId: id });
    const sub = await MiniMqtt.connect({
      port,
      // tali's client-ID space: a user's connections are named after it.
      clientId: adminSecret !== undefined ? `bench-admin:${i}` : `bench-s-${i}`,
      ...(adminSecret !== undefined && { username: 'bench-admin', password: adminSecret }),
    });
    await sub.subscribe([topic], 1);
    pairs.push({ pub, sub, topic, prepared: { 0: new PreparedPublish(topic, payload, 0), 1: new PreparedPublish(topic, payload, 1) } });
  }
  return pairs;
}

/** Every pair keeps `window` messages in flight for `ms`; latency is publish → delivery, on this process's clock. */
async function phase(target: Target, n: number, qos: 0 | 1, window: number, ms: number, latencyCap: number): Promise<PhaseResult> {
  const pairs = target.pairs.slice(0, n);
  const latencies: number[] = [];
  let received = 0;
  let running = true;
  let inflight = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const cpu0 = await target.cpuMs();
  const load0 = process.cpuUsage();
  const sendOne = (pair: Pair) => {
    const p = pair.prepared[qos];
    const bytes = Buffer.from(p.withId(pair.pub.nextId()));
    bytes.writeDoubleLE(performance.now(), p.payloadOffset);
    inflight++;
    pair.pub.write(bytes);
  };
  let drained: () => void = () => {};
  for (const pair of pairs) {
    pair.sub.onMessage = (payload) => {
      const now = performance.now();
      inflight--;
      if (now <= end) {
        received++;
        if (latencies.length < latencyCap) latencies.push(now - payload.readDoubleLE(0));
      }
      if (running) sendOne(pair);
      else if (inflight === 0) drained();
    };
  }
  for (const pair of pairs) for (let k = 0; k < window; k++) sendOne(pair);
  await sleep(ms);
  running = false;
  const seconds = (performance.now() - t0) / 1000;
  const loadCpu = process.cpuUsage(load0);
  const cpu1 = await target.cpuMs();
  const brokerCpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
  const brokerSys = cpu1.system - cpu0.system;
  if (inflight > 0) await Promise.race([new Promise<void>((resolve) => (drained = resolve)), sleep(3000)]);
  for (const pair of pairs) pair.sub.onMessage = undefined;
  return { received, seconds, latencies, brokerCpu, brokerSys, loadCpu: (loadCpu.user + loadCpu.system) / 1000 };
}

type Figures = { msgsPerSecond: Summary; cpuUsPerMessage: number; brokerCore: number; sysShare: number };

function brokerBottleneck(many: number, tali: Figures, aedes: Figures, mosq: Figures | undefined, spread: { min: number; max: number; worst: string }): string {
  const hooks = ratio(tali.cpuUsPerMessage, aedes.cpuUsPerMessage);
  const parts = [
    `CPU per message in the broker's one thread. At QoS 1 ${many} → ${many} tali's broker spent ${fmt(tali.cpuUsPerMessage, 0)} µs per delivered message (${fmt(tali.sysShare * 100, 0)} % of it in the kernel), ${fmtRatio(hooks)} plain Aedes's ${fmt(aedes.cpuUsPerMessage, 0)} µs; over all four cases tali costs ${fmtRatio(spread.min)}–${fmtRatio(spread.max)} Aedes's CPU per message (most at ${spread.worst}, where the per-message work is smallest and tali's fixed per-packet cost — the connection guard re-framing the byte stream, the rate limiter, the ACL check — shows most). Aedes's own JavaScript packet path (parse, route, QoS 1 bookkeeping, serialise) is the bulk either way.`,
  ];
  if (mosq) {
    const lead = ratio(mosq.msgsPerSecond.p50, tali.msgsPerSecond.p50);
    parts.push(
      `Mosquitto spent ${fmt(mosq.cpuUsPerMessage, 0)} µs per message, ${fmt(mosq.sysShare * 100, 0)} % of it in the kernel (a send or recv system call per packet, costly on this virtual machine, where Node batches socket reads and writes); it delivered ${fmtRatio(lead)} tali's rate.`,
    );
  }
  parts.push(`The broker used ${fmt(tali.brokerCore * 100, 0)} % of a core in that phase: on 2 cores the load generator and everything else running share the other one.`);
  return parts.join(' ');
}

export interface BrokerOptions {
  /** Rounds (each target measured once per round, targets interleaved). */
  rounds: number;
  phaseMs: number;
  windows: { '1to1': number; '100to100': number };
  /** Publisher/subscriber pairs of the many-to-many case (100). */
  many: number;
}

export async function runBroker(options: BrokerOptions): Promise<BenchTable> {
  const notes: string[] = [];
  const targets: Target[] = [];
  const children: Child<TargetCommand, TargetEvent>[] = [];
  let mosquitto: Mosquitto | undefined;
  const results = new Map<string, { thr: PhaseResult[]; lat: PhaseResult[] }>();
  try {
    // Start-up in parallel (loading the modules dominates it); connect in turn.
    const [tali, aedes, mq] = await Promise.all([
      startTarget('tali'),
      startTarget('aedes'),
      startMosquitto().catch((err: Error) => {
        notes.push(`Mosquitto skipped: ${err.message}`);
        return undefined;
      }),
    ]);
    mosquitto = mq;
    for (const [name, t] of [['tali', tali], ['aedes', aedes]] as const) {
      children.push(t.child);
      targets.push({ name, port: t.port, cpuMs: childCpu(t.child), stop: async () => t.child.send({ cmd: 'stop' }), pairs: await connectPairs(t.port, options.many, t.adminSecret) });
    }
    if (mosquitto) {
      targets.push({ name: 'mosquitto', port: mosquitto.port, cpuMs: mosquitto.cpuMs, stop: async () => {}, pairs: await connectPairs(mosquitto.port, options.many, undefined) });
      notes.push(`Mosquitto ${mosquitto.version} (Debian package) on the same machine in the same run.`);
    } else if (!notes.length) {
      notes.push('Mosquitto skipped: not installed (apt-get install mosquitto); tali is compared with plain Aedes only.');
    }

    const scenarios: { qos: 0 | 1; n: number; key: '1to1' | '100to100' }[] = [];
    for (const qos of [0, 1] as const) for (const [n, key] of [[1, '1to1'], [options.many, '100to100']] as const) scenarios.push({ qos, n, key });
    // Warm-up: JIT, socket buffers.
    for (const t of targets) await phase(t, options.many, 1, 2, 300, 0);
    for (let r = 0; r < options.rounds; r++) {
      for (const s of scenarios) {
        const order = targets.map((_, i) => targets[(i + r) % targets.length] as Target);
        for (const t of order) {
          const key = `${t.name}:${s.qos}:${s.key}`;
          const entry = results.get(key) ?? { thr: [], lat: [] };
          entry.lat.push(await phase(t, s.n, s.qos, 1, options.phaseMs, 20_000));
          entry.thr.push(await phase(t, s.n, s.qos, options.windows[s.key], options.phaseMs, 20_000));
          results.set(key, entry);
        }
      }
    }
    for (const t of targets) for (const p of t.pairs) (p.pub.end(), p.sub.end());
  } finally {
    for (const t of targets) await t.stop().catch(() => {});
    for (const c of children) await c.close();
    await mosquitto?.stop();
  }

  const rows: string[][] = [];
  const data: Record<string, unknown> = {};
  const chartSeries: { label: string; samples: number[] }[] = [];
  const rate = (list: PhaseResult[]) => summarize(list.map((p) => p.received / p.seconds));
  for (const qos of [0, 1] as const) {
    for (const key of ['1to1', '100to100'] as const) {
      const base = results.get(`mosquitto:${qos}:${key}`) ?? results.get(`aedes:${qos}:${key}`);
      const baseName = results.has(`mosquitto:${qos}:${key}`) ? 'Mosquitto' : 'plain Aedes';
      const baseRate = base ? rate(base.thr).p50 : NaN;
      const baseLat = base ? summarize(base.lat.flatMap((p) => p.latencies)) : undefined;
      for (const t of targets) {
        const entry = results.get(`${t.name}:${qos}:${key}`);
        if (!entry) continue;
        const msgs = rate(entry.thr);
        const lat: Summary = summarize(entry.lat.flatMap((p) => p.latencies));
        const loaded = summarize(entry.thr.flatMap((p) => p.latencies));
        const cpuPerMsg = (entry.thr.reduce((a, p) => a + p.brokerCpu, 0) * 1000) / Math.max(1, entry.thr.reduce((a, p) => a + p.received, 0));
        const brokerCore = entry.thr.reduce((a, p) => a + p.brokerCpu, 0) / (entry.thr.reduce((a, p) => a + p.seconds, 0) * 1000);
        const loadCore = entry.thr.reduce((a, p) => a + p.loadCpu, 0) / (entry.thr.reduce((a, p) => a + p.seconds, 0) * 1000);
        const sysShare = entry.thr.reduce((a, p) => a + p.brokerSys, 0) / Math.max(1e-9, entry.thr.reduce((a, p) => a + p.brokerCpu, 0));
        const label = key === '1to1' ? '1 → 1' : `${options.many} → ${options.many}`;
        data[`${t.name}:${qos}:${key}`] = { msgsPerSecond: msgs, latency: lat, loadedLatency: loaded, cpuUsPerMessage: cpuPerMsg, brokerCore, loadCore, sysShare };
        if (qos === 1) chartSeries.push({ label: `${t.name} QoS1 ${label}`, samples: entry.lat.flatMap((p) => p.latencies) });
        const isBase = (baseName === 'Mosquitto' && t.name === 'mosquitto') || (baseName === 'plain Aedes' && t.name === 'aedes');
        rows.push([
          `QoS ${qos}`,
          label,
          LABELS[t.name],
          fmtInt(msgs.p50),
          isBase ? 'baseline' : fmtRatio(ratio(msgs.p50, baseRate)),
          `${fmt(lat.p50, 2)} / ${fmt(lat.p99, 2)}`,
          isBase || !baseLat ? 'baseline' : fmtRatio(ratio(lat.p50, baseLat.p50)),
          `${fmt(loaded.p50, 1)} / ${fmt(loaded.p99, 1)}`,
          `${fmt(cpuPerMsg, 1)} (${fmt(sysShare * 100, 0)}% sys)`,
          `${fmt(brokerCore * 100, 0)}% / ${fmt(loadCore * 100, 0)}%`,
        ]);
      }
    }
  }
  const get = (k: string) => data[k] as Figures | undefined;
  const spread = () => {
    const cases = (['0:1to1', '0:100to100', '1:1to1', '1:100to100'] as const).flatMap((c) => {
      const t = get(`tali:${c}`);
      const a = get(`aedes:${c}`);
      return t && a ? [{ c, r: ratio(t.cpuUsPerMessage, a.cpuUsPerMessage) }] : [];
    });
    const sorted = cases.sort((x, y) => x.r - y.r);
    const worst = sorted.at(-1)?.c ?? '';
    const label = worst ? `QoS ${worst[0]} ${worst.endsWith('1to1') ? '1 → 1' : `${options.many} → ${options.many}`}` : '';
    return { min: sorted[0]?.r ?? NaN, max: sorted.at(-1)?.r ?? NaN, worst: label };
  };
  const tali1 = get('tali:1:100to100');
  const mosq1 = get('mosquitto:1:100to100');
  const aedes1 = get('aedes:1:100to100');
  notes.unshift(
    `${options.rounds} rounds × ${options.phaseMs} ms per phase and target, targets interleaved; payload ${PAYLOAD_BYTES} bytes; subscriptions QoS 1 (delivery at the publish QoS).`,
    `Latency: each pair with one message in flight (1 → 1 is then unloaded; ${options.many} → ${options.many} has ${options.many} in flight). Throughput: windows of ${options.windows['1to1']} (1 → 1) and ${options.windows['100to100']} per pair (${options.many} → ${options.many}); "loaded latency" is measured in that phase.`,
    '"broker CPU µs/msg": broker CPU (user + system, kernel share in brackets) per delivered message in the throughput phase; "broker / load CPU": share of one core used by the broker and by the load generator.',
  );
  return {
    id: 'broker',
    title: 'Broker: 2 KB messages, tali vs Mosquitto',
    columns: ['QoS', 'pubs → subs', 'broker', 'msgs/s p50', 'ratio', 'latency p50 / p99 ms', 'ratio p50', 'loaded latency p50 / p99 ms', 'broker CPU µs/msg', 'broker / load CPU'],
    rows,
    notes,
    bottleneck: tali1 && aedes1 ? brokerBottleneck(options.many, tali1, aedes1, mosq1, spread()) : undefined,
    data,
    charts: [{ title: 'Broker latency, QoS 1, one message in flight per pair', unit: 'ms', series: chartSeries }],
  };
}
