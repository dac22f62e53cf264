/**
 * What a media worker's garbage collector does under relay load (issue 16, the sigload p99): the relay table's load
 * (./relay-load.ts) held at one level, the bridge started with V8's --trace-gc, then each media worker's heap
 * snapshot summarised by constructor (what survives: a scavenge's cost is the objects it copies, not the garbage).
 *
 *   node_modules/.bin/node bench/lib/relay-gc.ts [workers=2] [viewers=128] [seconds=10] > FILE
 *
 * stdout must be a file: V8 prints its GC trace there for every isolate of the bridge, this script its markers around
 * the measured window, then reads the file back (/proc/self/fd/1) and prints per isolate of the bridge: scavenges and
 * their pause per second of the window, and the heap summaries.
 */
import { readFileSync } from 'node:fs';
import { RelayLoad } from './relay-load.ts';
import { sleep } from './util.ts';

const [workers = 2, viewers = 128, seconds = 10] = process.argv.slice(2).map(Number);
process.env.BENCH_BRIDGE_EXEC_ARGV ??= '--trace-gc'; // or --trace-gc-nvp: bytes survived and promoted per scavenge
const load = await RelayLoad.start({ streams: 4, identities: 8, mediaWorkers: workers, generatorNice: 19, trace: (w) => console.error(`[relay-gc] ${w}`) });
try {
  load.media(true);
  await load.setViewers(viewers);
  await sleep(5000);
  const connected = (await load.relayStats()).connectedViewers;
  const pid = load.bridge.process.pid;
  console.log(`RELAY-GC-START ${pid}`);
  const r0 = await load.relayStats();
  await sleep(seconds * 1000);
  const r1 = await load.relayStats();
  console.log(`RELAY-GC-END ${pid}`);
  const lines = readFileSync('/proc/self/fd/1', 'utf8').split('\n');
  const from = lines.findIndex((l) => l.startsWith('RELAY-GC-START'));
  const to = lines.findIndex((l) => l.startsWith('RELAY-GC-END'));
  const perIsolate = new Map<string, { pauses: number[]; survived: number; promoted: number; other: number; otherMs: number }>();
  for (const line of lines.slice(from + 1, to)) {
    // --trace-gc: "[pid:isolate]  t ms: Scavenge a (b) -> c (d) MB, …, PAUSE / … ms"; --trace-gc-nvp: "… pause=P … gc=s …
    // promoted=B … new_space_survived=B"
    const m = /^\[(\d+):(0x[0-9a-f]+)(?::\d+)?\]\s+\d+ ms: (?:(Scavenge|Mark-Compact|Minor Mark-Sweep|Mark-Sweep)\b.*?, ([\d.]+) \/ [\d.]+ ms|.*?pause=([\d.]+) .*?gc=(\w+))/.exec(line);
    if (!m || Number(m[1]) !== pid) continue;
    const s = perIsolate.get(m[2]!) ?? { pauses: [], survived: 0, promoted: 0, other: 0, otherMs: 0 };
    const scavenge = m[3] === 'Scavenge' || m[6] === 's';
    const ms = Number(m[4] ?? m[5]);
    if (scavenge) {
      s.pauses.push(ms);
      s.survived += Number(/new_space_survived=(\d+)/.exec(line)?.[1] ?? 0);
      s.promoted += Number(/\bpromoted=(\d+)/.exec(line)?.[1] ?? 0);
    } else {
      s.other++;
      s.otherMs += ms;
    }
    perIsolate.set(m[2]!, s);
  }
  const out = [`viewers ${connected}, forwarded ${Math.round((r1.forwarded - r0.forwarded) / seconds)} pkts/s, window ${seconds} s`];
  for (const [isolate, s] of perIsolate) {
    const sorted = s.pauses.sort((a, b) => a - b);
    const n = sorted.length;
    const kb = (b: number) => (n ? (b / n / 1024).toFixed(0) : '0');
    out.push(
      `isolate ${isolate}: ${(n / seconds).toFixed(2)} scavenges/s, ${(sorted.reduce((a, b) => a + b, 0) / seconds).toFixed(1)} ms/s of scavenge pause, pause p50 ${sorted[Math.floor(n / 2)] ?? 0} max ${sorted[n - 1] ?? 0} ms` +
        (s.survived + s.promoted > 0 ? `, per scavenge ${kb(s.survived)} KB survived, ${kb(s.promoted)} KB of it promoted` : '') +
        `; other GCs ${s.other} (${s.otherMs.toFixed(1)} ms)`,
    );
  }
  load.bridge.send({ cmd: 'workerHeap' });
  const heaps = await load.bridge.next('workerHeap', 120_000);
  for (const w of heaps.workers) {
    out.push(`${w.name}: ${(w.totalBytes / 1e6).toFixed(1)} MB live`);
    for (const t of w.top.slice(0, 25)) out.push(`  ${t.name.padEnd(40)} ${String(t.count).padStart(8)} ${String(t.bytes).padStart(10)} B`);
  }
  console.error(out.join('\n'));
} finally {
  await load.close();
}
