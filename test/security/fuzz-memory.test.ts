/**
 * Memory after a protocol fuzz burst (issue 11, "the broker as a broker"). A FUME run is not possible here (no public
 * network), so bench/flood.ts sends what such a fuzzer sends, from another process, over TCP and WebSocket: random
 * bytes, half-open and half-sent CONNECTs, 200 MB announcements, and valid anonymous CONNECTs (CleanSession 0 half
 * the time, wills) followed by random PUBLISH (retained, QoS 0–2, up to 64 KB), SUBSCRIBE `#` and mutated packets.
 * The bridge runs in its own process with anonymous clients allowed, so the fuzzer gets as far as it can; a
 * well-behaved client does round trips meanwhile.
 *
 * What held memory before (commit 1252089, the same bench for 120 s: 197 → 368 MB resident, external buffers 130 MB
 * at the peak): stored sessions kept the refused `#` filters and queues without bound, and every connection could
 * wait for CONNACK with its buffers (256 pending from one address). Both are bounded now (stored-sessions.ts, the
 * per-address pending limit).
 *
 * Resident memory alone does not tell a leak: after a burst it stays near its peak, since glibc keeps the pages freed
 * after it (+62 to +95 MB after one 12 s burst here, +103 to +107 MB since media workers start with the bridge in
 * b703610, +101 MB seen once in CI after a 20 s one), and that high-water mark does not grow with the attack's
 * length (+52 MB after 60 s and after 120 s). A leak does. So the attack runs twice, 12 s each, the bridge settling
 * (sockets closed, 3 s, full GC) after each:
 *
 *  - heap and external buffers are back where they started after each burst (measured: heap −4.3 to +1.7 MB,
 *    buffers +0.1 MB; bounds 15 and 8 MB as before);
 *  - resident memory after the second burst is within 40 MB of where the first left it: the second burst reuses the
 *    pages the first one's peak took, what it keeps more is what it leaked (measured −4.4 to +3.4 MB in 11 runs at
 *    load 2.7–5.7; once +24 MB, in a third burst whose peak went higher);
 *  - and within 200 MB of the start in all, against a catastrophe (measured +62 to +107 MB).
 *
 * Shown to fail on a leak: the TCP listener made to keep the first 1 MB each connection read (what a forgotten
 * per-connection buffer looks like), this test printed settled buffers +59.4 MB after the first burst and +102.5 MB
 * after the second, resident memory +19.2 MB from the first burst's end to the second's, and failed on the buffers
 * (`expected 59.4 to be less than 8`); the same leak under bench/flood.ts alone: buffers +9.2 then +63.8 MB, resident
 * +82 MB from the first end to the second. Resident memory catches only what outgrows the pages the first burst left
 * free (here 19 of 43 MB leaked); memory held from JavaScript shows in the heap and buffer bounds first.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';
import { withTimeout } from '../helpers/wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BURST_S = 12;

interface Memory {
  rss: string;
  heap: string;
  external: string;
}
interface FloodReport {
  baseline: Memory;
  bursts: { settled: Memory; peak: { rss: string }; wellBehaved: { ok: number; failed: number } }[];
}

const mb = (text: string) => Number.parseFloat(text);

it(`after each of two ${BURST_S} s protocol fuzz bursts the heap and buffers are back where they were, and resident memory does not grow with the second`, { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, ['bench/flood.ts', 'tali', 'garbage,fuzz,partial,big-claim,half-open', String(BURST_S), '30', 'tcp,ws', '2'], {
    cwd: ROOT,
    env: { ...process.env, TALI_FLOOD_CONFIG: JSON.stringify({ allowAnonymous: true }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onTestFinished(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await withTimeout(new Promise<number | null>((resolve) => child.once('exit', resolve)), 100_000, 'the fuzz bursts to end');
  expect(code).toBe(0);
  const report = JSON.parse(out.trim().split('\n').at(-1) as string) as FloodReport;
  const [a, b] = report.bursts.map((burst) => burst.settled) as [Memory, Memory];
  const growth = (from: Memory, to: Memory) => ({ rss: mb(to.rss) - mb(from.rss), heap: mb(to.heap) - mb(from.heap), external: mb(to.external) - mb(from.external) });
  const afterA = growth(report.baseline, a);
  const afterB = growth(report.baseline, b);
  const secondBurst = growth(a, b);
  console.log(`fuzz bursts: ${JSON.stringify(report)}; settled growth after the first ${JSON.stringify(afterA)}, after the second ${JSON.stringify(afterB)}, the second burst's ${JSON.stringify(secondBurst)}`);
  for (const settled of [afterA, afterB]) {
    expect(settled.heap).toBeLessThan(15);
    expect(settled.external).toBeLessThan(8);
  }
  expect(secondBurst.rss).toBeLessThan(40);
  expect(afterB.rss).toBeLessThan(200);
  for (const burst of report.bursts) expect(burst.wellBehaved.ok).toBeGreaterThan(0);
});
