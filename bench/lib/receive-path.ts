/**
 * The receive path of one camera session with no viewer, measured without the noise of a second process: a werift
 * camera in this process streams a clip to a real bridge (MQTT signaling, answerer, relay, fleet, metrics, as
 * deployed) as fast as the event loop lets it; the SRTP datagrams the bridge's ICE connection delivered are recorded,
 * then delivered again through the same connection, many times, and the CPU per packet is taken. What it covers:
 * everything from werift's ICE connection (`onData`) to the last of tali's listeners (SRTP decrypt, RTP parse,
 * werift's receiver and its statistics, NACK bookkeeping, tali's session, keyframe detection, fleet and metrics);
 * not the UDP socket (see the floor in ./floor.ts for that).
 *
 * `node bench/lib/receive-path.ts [--profile FILE]` prints µs per packet (and writes a .cpuprofile of the replay).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Session as InspectorSession } from 'node:inspector/promises';
import { RTCPeerConnection } from 'werift';
import { createVideoPacketizer, loadVideoClip } from '../../devices/camera/media/video-source.ts';
import { startBenchBridge } from './bridge.ts';
import { createCameraPeer, sessionId, upMessage } from './camera.ts';
import { makeClip } from './clip.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { Topics } from '../../src/protocol/topics.ts';
import { floorPasses } from './floor.ts';
import { sampleHeap } from './heap-sampling.ts';
import { withTimeout } from './util.ts';

interface IceConnectionLike {
  onData: { execute(data: Buffer): void; subscribe(fn: (data: Buffer) => void): { unSubscribe(): void } };
}

export interface ReceivePathResult {
  /** CPU per replayed packet, µs (median of the passes). */
  usPerPacket: number;
  packets: number;
  passes: number;
  /** Bytes per datagram, mean. */
  bytesPerPacket: number;
  /** werift's SrtpSession.decrypt alone on the same packets, µs. */
  srtpDecryptUs: number;
  /** The floor (./floor.ts), one pass after each replay pass in this process, µs (median). */
  floorUs: number;
  /** Median over the pairs of replay ÷ the floor pass beside it (ABBA order): the ratio least moved by a machine whose load changes. */
  ratioToFloor: number;
  /** Each pair's ratio, in the order run. */
  ratios: number[];
  /** All counted replay passes' CPU ÷ all counted floor passes' (per packet): every scavenge counted where it fell. */
  totalRatio: number;
  /** The same median for the main thread's CPU alone (the JavaScript, without V8's helper threads). */
  mainRatio: number;
  /** Pairs run first and not counted (the JIT still compiling the path). */
  warmupPairs: number;
  /** Times each pass goes over the recording. */
  repeat: number;
  /** The replay's and the floor's passes, split by thread, with what they leave for the GC. */
  replay: CostPerPacket & { heapBytes: number };
  floor: CostPerPacket & { heapBytes: number };
}

/** Medians over the passes, µs per packet; collections counted over all of them. */
export interface CostPerPacket {
  /** The process's CPU (every thread). */
  us: number;
  /** The main (JavaScript) thread's CPU. */
  mainUs: number;
  /** The rest: V8's helper threads (GC, compiler) and any other thread of the process (mean over the passes). */
  helperUs: number;
  /** Scavenges (minor GCs) per 1 000 packets. */
  scavenges: number;
  /** Major collections (mark-compact) during all the passes. */
  majorGcs: number;
  /** Mean CPU per packet (µs) by thread name over the passes (Linux only): which helper threads worked. */
  byThread: Record<string, number>;
}

interface PassCost {
  packets: number;
  us: number;
  mainUs: number;
  scavenges: number;
  majorGcs: number;
  /** CPU per packet (µs) by thread name (the main thread included), from /proc. */
  byThread: Record<string, number>;
}

/** One pass: CPU of the process and of this thread, and the collections V8 reported meanwhile. */
async function measurePass(run: () => Promise<void> | void, packets: number): Promise<PassCost> {
  const gcs: number[] = [];
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push(((e as PerformanceEntry & { detail?: { kind: number } }).detail)?.kind ?? 0);
  });
  observer.observe({ entryTypes: ['gc'] });
  if (process.env.BENCH_MARK_PASSES) console.log(`--- pass of ${packets} packets`);
  const threads0 = threadTimes();
  const p0 = process.cpuUsage();
  const t0 = process.threadCpuUsage();
  await run();
  const p = process.cpuUsage(p0);
  const t = process.threadCpuUsage(t0);
  const threads = threadTimes();
  const byThread: Record<string, number> = {};
  for (const [tid, { name, ns }] of threads) {
    const before = threads0.get(tid)?.ns ?? 0;
    if (ns > before) byThread[name] = (byThread[name] ?? 0) + (ns - before) / 1000 / packets;
  }
  // GC entries arrive asynchronously: one more turn so those of the pass are in.
  await new Promise((resolve) => setImmediate(resolve));
  observer.disconnect();
  return {
    packets,
    us: (p.user + p.system) / packets,
    mainUs: (t.user + t.system) / packets,
    scavenges: gcs.filter((k) => k === constants.NODE_PERFORMANCE_GC_MINOR).length,
    majorGcs: gcs.filter((k) => k === constants.NODE_PERFORMANCE_GC_MAJOR).length,
    byThread,
  };
}

/** CPU time so far of each thread of this process (Linux /proc, ns), by thread id, with the thread's name. */
function threadTimes(): Map<string, { name: string; ns: number }> {
  const out = new Map<string, { name: string; ns: number }>();
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
        out.set(tid, { name, ns: Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) });
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    // not Linux: no per-thread figures
  }
  return out;
}

const isRtp = (d: Buffer) => d.length > 12 && (d[0]! & 0xc0) === 0x80 && !(d[1]! >= 192 && d[1]! <= 223);

/** Longest run of recorded packets whose sequence numbers do not wrap (replaying across a wrap moves SRTP's ROC). */
function noWrap(packets: Buffer[]): Buffer[] {
  let best: Buffer[] = [];
  let run: Buffer[] = [];
  let last = -1;
  for (const p of packets) {
    const seq = p.readUInt16BE(2);
    if (last !== -1 && seq < last) {
      if (run.length > best.length) best = run;
      run = [];
    }
    run.push(p);
    last = seq;
  }
  return run.length > best.length ? run : best;
}

export async function measureReceivePath(
  options: { packets?: number; passes?: number; warmupPairs?: number; repeat?: number; profile?: string; heapSites?: boolean; bridgeConfig?: Record<string, unknown> } = {},
): Promise<ReceivePathResult> {
  const want = options.packets ?? 3000;
  const passes = options.passes ?? 11;
  const warmupPairs = options.warmupPairs ?? 3;
  const repeat = options.repeat ?? 2;
  const clip = await makeClip(1000, 150);
  const bb = await startBenchBridge({ allowAnonymous: true, ...options.bridgeConfig });
  // The bridge's peer connection, caught as it applies the camera's offer (bench only: nothing in tali exposes it).
  let bridgePc: RTCPeerConnection | undefined;
  const original = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (this: RTCPeerConnection, ...args: Parameters<typeof original>) {
    bridgePc ??= this;
    return original.apply(this, args);
  };
  const camera = await createCameraPeer();
  const topics = new Topics(bb.bridge.config.root);
  const deviceId = 'bench-receive';
  const client = await connectMqtt({ target: bb.bridge.mqttUrl, clientId: deviceId });
  try {
    await client.subscribeAsync(topics.device(deviceId, 'down'), { qos: 1 });
    const sid = sessionId();
    const answered = new Promise<string>((resolve) =>
      client.on('message', (_t, payload) => {
        const m = JSON.parse(payload.toString()) as { type: string; sessionId?: string; sdp?: string };
        if (m.type === 'answer' && m.sessionId === sid) resolve(m.sdp ?? '');
      }),
    );
    client.publish(topics.device(deviceId, 'up'), upMessage('offer', sid, 1, { sdp: camera.offerSdp }), { qos: 1 });
    await camera.applyAnswer(await withTimeout(answered, 20_000, 'answer'));
    await withTimeout(camera.connected, 20_000, 'camera connected');
    RTCPeerConnection.prototype.setRemoteDescription = original;
    const connection = (bridgePc as unknown as { iceTransports: { connection: IceConnectionLike }[] }).iceTransports[0]?.connection;
    if (connection === undefined) throw new Error('no ICE connection on the bridge peer');

    // Record: the clip, packetized, sent as fast as the loop drains it (in batches, so the socket buffers keep up).
    const recorded: Buffer[] = [];
    const tap = connection.onData.subscribe((data) => isRtp(data) && recorded.push(Buffer.from(data)));
    const { frames } = loadVideoClip('VP8', clip.path);
    // Sequence numbers that cannot wrap while recorded: werift's SRTP guesses the rollover counter from the last
    // number it saw (MaxROCDisorder), so replaying a recording that crossed 65535 → 0 moved it and a pass in 20 failed
    // with "Failed to authenticate SRTP packet" (a random start wraps within ~3 000 packets in ~5 % of runs).
    const packetizer = createVideoPacketizer({ codec: 'VP8', sequenceNumber: 1000 });
    const sender = camera.pc.getTransceivers()[0]!.sender;
    for (let i = 0, ts = 0; recorded.length < want; i++, ts += 3000) {
      for (const packet of packetizer.packetize(frames[i % frames.length]!, ts)) await sender.sendRtp(packet);
      if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    tap.unSubscribe();
    const replay = noWrap(recorded);

    // werift's SRTP layer alone, on the same packets (it keeps no replay state that would refuse them).
    const srtp = (bridgePc as unknown as { dtlsTransports: { srtp: { decrypt(b: Buffer): Buffer } }[] }).dtlsTransports[0]!.srtp;
    for (const p of replay) srtp.decrypt(p);
    const d0 = process.cpuUsage();
    for (let k = 0; k < passes; k++) for (const p of replay) srtp.decrypt(p);
    const decrypted = process.cpuUsage(d0);
    const srtpDecryptUs = (decrypted.user + decrypted.system) / replay.length / passes;

    // Replay and floor passes in pairs, the order alternating (replay first, then floor first: ABBA), both in chunks
    // of 200 packets with a turn of the loop between them (microtasks, timers and V8's foreground GC tasks run, as
    // they would live); a pass goes over the recording `repeat` times (the floor over as many packets). Per pass: the
    // process's CPU, the main thread's (what the JavaScript costs), the rest (V8's helper threads: parallel
    // scavenges, concurrent marking, the optimising compilers), and the collections V8 ran. The first pairs are not
    // counted: V8 is still compiling the path (TurboFan, on its helper threads: 5–18 ms per function) for several
    // thousand packets, which a camera streaming for hours pays once.
    const floorPass = floorPasses({ chunk: 200, packets: replay.length * repeat });
    const perPass = replay.length * repeat;
    const replayPass = async () => {
      for (let r = 0; r < repeat; r++) {
        for (let i = 0; i < replay.length; i += 200) {
          for (let k = i; k < i + 200 && k < replay.length; k++) connection.onData.execute(replay[k]!);
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
    };
    const pair = async (replayFirst: boolean): Promise<[PassCost, PassCost]> => {
      if (replayFirst) {
        const r = await measurePass(replayPass, perPass);
        return [r, await measurePass(floorPass.run, floorPass.packets)];
      }
      const f = await measurePass(floorPass.run, floorPass.packets);
      return [await measurePass(replayPass, perPass), f];
    };
    for (let k = 0; k < warmupPairs; k++) await pair(k % 2 === 0);
    const inspector = options.profile ? new InspectorSession() : undefined;
    if (inspector) {
      inspector.connect();
      await inspector.post('Profiler.enable');
      await inspector.post('Profiler.setSamplingInterval', { interval: 100 });
      await inspector.post('Profiler.start');
    }
    const replays: PassCost[] = [];
    const floors: PassCost[] = [];
    const ratios: number[] = [];
    const mainRatios: number[] = [];
    for (let k = 0; k < passes; k++) {
      const [r, f] = await pair(k % 2 === 0);
      replays.push(r);
      floors.push(f);
      ratios.push(r.us / f.us);
      mainRatios.push(r.mainUs / f.mainUs);
    }
    if (inspector) {
      const { profile } = await inspector.post('Profiler.stop');
      inspector.disconnect();
      await writeFile(options.profile!, JSON.stringify(profile));
    }
    // What each packet leaves for the GC: heap bytes allocated per packet, garbage included (sampled, separate passes).
    const replayHeap = await sampleHeap(replayPass);
    const floorHeap = await sampleHeap(floorPass.run);
    if (options.heapSites) {
      for (const [name, h, n] of [['replay', replayHeap, perPass], ['floor', floorHeap, floorPass.packets]] as const) {
        console.error(`${name}: ${(h.bytes / n).toFixed(0)} B/packet (heap, garbage included)`);
        if (process.env.BENCH_HEAP_DIR) await writeFile(`${process.env.BENCH_HEAP_DIR}/${name}.heapprofile`, JSON.stringify(h.profile));
        for (const site of h.sites.slice(0, 30)) console.error(`  ${(site.bytes / n).toFixed(1).padStart(8)}  ${site.site}`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const costs = (xs: PassCost[]): CostPerPacket => ({
      us: median(xs.map((x) => x.us)),
      mainUs: median(xs.map((x) => x.mainUs)),
      // A mean, not a median: scavenges land in one pass of two or three, and each costs what it costs.
      helperUs: xs.reduce((a, x) => a + x.us - x.mainUs, 0) / xs.length,
      scavenges: xs.reduce((a, x) => a + x.scavenges, 0) / xs.reduce((a, x) => a + x.packets, 0) * 1000,
      majorGcs: xs.reduce((a, x) => a + x.majorGcs, 0),
      byThread: Object.fromEntries(
        [...new Set(xs.flatMap((x) => Object.keys(x.byThread)))].map((name) => [name, xs.reduce((a, x) => a + (x.byThread[name] ?? 0), 0) / xs.length]),
      ),
    });
    const replayCost = costs(replays);
    const floorCost = costs(floors);
    return {
      usPerPacket: replayCost.us,
      floorUs: floorCost.us,
      ratioToFloor: median(ratios),
      ratios,
      totalRatio: replays.reduce((a, x) => a + x.us * x.packets, 0) / floors.reduce((a, x) => a + x.us * x.packets, 0),
      mainRatio: median(mainRatios),
      warmupPairs,
      repeat,
      replay: { ...replayCost, heapBytes: replayHeap.bytes / perPass },
      floor: { ...floorCost, heapBytes: floorHeap.bytes / floorPass.packets },
      packets: replay.length,
      passes,
      bytesPerPacket: replay.reduce((a, p) => a + p.length, 0) / replay.length,
      srtpDecryptUs,
    };
  } finally {
    RTCPeerConnection.prototype.setRemoteDescription = original;
    await client.endAsync().catch(() => {});
    await camera.stop();
    await bb.close();
    await clip.remove();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv.indexOf('--profile');
  const result = await measureReceivePath({ profile: at > 0 ? process.argv[at + 1] : undefined, heapSites: process.argv.includes('--heap') });
  console.log(JSON.stringify(result));
  process.exit(0);
}
