/**
 * 2. Concurrency: 1, 10 and 100 cameras negotiating at once; time to first frame (offer sent → first keyframe at
 * the answerer), p50/p99.
 *
 * The cameras live in a child process (bench/lib/camera-worker.ts) so their CPU is not charged to the answering
 * side. The floor is bare werift answerers in this process, signaled over IPC; tali's path is a real bridge in this
 * process, the cameras publishing over MQTT/TCP or MQTT/WebSocket. Each camera streams from the moment it is
 * connected until its first frame has reached the answerer, then stops: the measurement is of negotiating, not of
 * carrying 100 streams (the relay measurement does that). Offer times come from the child and
 * keyframe times from this process, on the shared epoch clock.
 */
import { RTCPeerConnection } from 'werift';
import type { CameraSession as Session } from '../src/answerer/session.ts';
import { codecParameters } from '../src/webrtc/codecs.ts';
import { startsKeyframe } from '../src/webrtc/keyframe.ts';
import { startBenchBridge, withoutClientLimits, type BenchBridge } from './lib/bridge.ts';
import type { WorkerCommand, WorkerEvent } from './lib/camera-worker.ts';
import { withoutDefaultStun } from '../src/webrtc/default-stun.ts';
import { Child } from './lib/child.ts';
import type { BenchTable } from './lib/report.ts';
import { epochMs, fmt, fmtRatio, ratio, summarize, type Summary } from './lib/stats.ts';
import { withTimeout } from './lib/util.ts';

type Path = 'floor' | 'mqtt' | 'ws';
const PATHS: Path[] = ['floor', 'mqtt', 'ws'];
const PATH_LABELS: Record<Path, string> = { floor: 'floor (werift, IPC)', mqtt: 'tali MQTT/TCP', ws: 'tali MQTT/WS' };

interface RoundResult {
  ttff: number[];
  answer: number[];
  connected: number[];
  failed: number;
  answererCpuMs: number;
  camerasCpuMs: number;
  wallMs: number;
}

async function round(worker: Child<WorkerCommand, WorkerEvent>, bb: BenchBridge, path: Path, n: number, timeoutMs: number): Promise<RoundResult> {
  const ids = Array.from({ length: n }, (_, i) => `bench-cc-${i}`);
  const url = path === 'mqtt' ? bb.bridge.mqttUrl : path === 'ws' ? bb.bridge.wsUrl : undefined;
  worker.send({ cmd: 'prepare', n, path, url, root: bb.bridge.config.root, ids, untilDelivered: true });
  await worker.next('ready', 120_000);

  const sent = new Map<number, number>();
  const answered = new Map<number, number>();
  const connected = new Map<number, number>();
  const keyframes = new Map<number, number>();
  const answerers: RTCPeerConnection[] = [];
  let rtpPackets = 0;
  let resolveAll!: () => void;
  const all = new Promise<void>((resolve) => (resolveAll = resolve));
  const markKeyframe = (i: number) => {
    if (keyframes.has(i)) return;
    keyframes.set(i, epochMs());
    worker.send({ cmd: 'delivered', i });
    if (keyframes.size === n) resolveAll();
  };

  const floorAnswer = async (i: number, sdp: string) => {
    const pc = new RTCPeerConnection({ codecs: { video: [codecParameters('VP8')], audio: [] }, iceServers: [] });
    answerers.push(pc);
    pc.onTrack.subscribe((track) =>
      track.onReceiveRtp.subscribe((p) => {
        rtpPackets++;
        if (startsKeyframe('VP8', p.payload)) markKeyframe(i);
      }),
    );
    await pc.setRemoteDescription({ type: 'offer', sdp });
    void pc.addIceCandidate(null).catch(() => {});
    const created = await pc.createAnswer();
    withoutDefaultStun(pc);
    await pc.setLocalDescription(created);
    worker.send({ cmd: 'answer', i, sdp: pc.localDescription?.sdp ?? '' });
  };
  const index = new Map(ids.map((id, i) => [id, i]));
  const onSession = (s: Session) => {
    const i = index.get(s.deviceId);
    if (i !== undefined) s.once('keyframe', () => markKeyframe(i));
  };
  bb.bridge.answerer.on('session', onSession);
  const off = worker.on((e) => {
    if (e.type === 'sent') {
      sent.set(e.i, e.t);
      if (e.sdp !== undefined) void floorAnswer(e.i, e.sdp);
    } else if (e.type === 'answered') answered.set(e.i, e.t);
    else if (e.type === 'connected') connected.set(e.i, e.t);
  });

  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  worker.send({ cmd: 'go' });
  await withTimeout(all, timeoutMs, `${n} first keyframes`).catch(() => {});
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  off();
  const sessionsAtStop = bb.bridge.answerer.sessions.size;
  const states = JSON.stringify(answerers.reduce((a: Record<string, number>, pc) => ((a[`${pc.connectionState}/${pc.iceConnectionState}`] = (a[`${pc.connectionState}/${pc.iceConnectionState}`] ?? 0) + 1), a), {}));
  const bridgeStates = JSON.stringify([...bb.bridge.answerer.sessions.values()].reduce((a: Record<string, number>, s) => ((a[s.state] = (a[s.state] ?? 0) + 1), a), {}));
  bb.bridge.answerer.off('session', onSession);
  worker.send({ cmd: 'stop' });
  const stopped = await worker.next('stopped', 60_000);
  await Promise.all(answerers.map((pc) => pc.close().catch(() => {})));
  // Let the bridge finish closing sessions (byes) before the next round.
  await waitUntil(() => bb.bridge.answerer.sessions.size === 0, 10_000);

  if (process.env.BENCH_DEBUG) {
    console.error(`[concurrency] ${path} n=${n}: sent ${sent.size} answered ${answered.size} connected ${connected.size} first frames ${keyframes.size} sessions-open-at-stop ${sessionsAtStop} floor-rtp ${rtpPackets} answerer-states ${states} bridge-sessions ${bridgeStates}`);
  }
  const delta = (m: Map<number, number>) => [...m].flatMap(([i, t]) => (sent.has(i) ? [t - (sent.get(i) as number)] : []));
  return {
    ttff: delta(keyframes),
    answer: delta(answered),
    connected: delta(connected),
    failed: n - keyframes.size,
    answererCpuMs: (cpu.user + cpu.system) / 1000,
    camerasCpuMs: stopped.cpuMs,
    wallMs,
  };
}

async function waitUntil(condition: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!condition() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

type LevelFigures = { ttff: Summary; answer: Summary; connected: Summary; failed: number; cpuMsPerCamera: number };

function concurrencyBottleneck(maxN: number, data: Record<string, LevelFigures>, one: LevelFigures): string {
  const floor = data[`${maxN}:floor`];
  const tcp = data[`${maxN}:mqtt`];
  const ws = data[`${maxN}:ws`];
  const failed = [floor, tcp, ws].reduce((a, d) => a + (d?.failed ?? 0), 0);
  const rounds = [floor, tcp, ws].filter(Boolean).length;
  const parts = [
    `Two cores doing ${maxN} ICE + DTLS handshakes at once, in JavaScript on both sides (werift: ECDHE, ECDSA, SRTP key derivation): the answering process spent ~${fmt(tcp?.cpuMsPerCamera, 0)} ms CPU per camera and the cameras' process about as much, so first frames come out as fast as the cores get through the handshakes — p50 ${fmt(tcp?.ttff.p50, 0)} ms over MQTT/TCP (floor ${fmt(floor?.ttff.p50, 0)} ms) against ${fmt(one.ttff.p50, 0)} ms for one camera.`,
  ];
  if (failed > 0) {
    const which = ([['floor', floor], ['tali MQTT/TCP', tcp], ['tali MQTT/WS', ws]] as const)
      .filter(([, d]) => (d?.failed ?? 0) > 0)
      .map(([name, d]) => `${name} ${d?.failed}`)
      .join(', ');
    parts.push(
      `${failed} of ${maxN * rounds} negotiations at ${maxN} at once never delivered a frame (${which}): werift's DTLS gives up when a flight's handshake messages are not all processed within ~4.5 s (dtls/src/socket.js waitForReady: ten polls 0…900 ms apart), which a process starting ${maxN} handshakes in the same instant misses. The floor's answers all come back at once over IPC; tali's come one by one through its MQTT client, which staggers the handshakes.`,
    );
  }
  parts.push(`What tali adds at that scale is its MQTT hops on a busy event loop: answer p50 ${fmt(tcp?.answer.p50, 0)} ms (TCP) / ${fmt(ws?.answer.p50, 0)} ms (WS) vs ${fmt(floor?.answer.p50, 0)} ms over IPC.`);
  return parts.join(' ');
}

export interface ConcurrencyOptions {
  /** [cameras at once, rounds] */
  levels: [number, number][];
  timeoutMs: number;
  /** The bridge's mediaWorkers (1: the main thread; N: N worker threads). */
  mediaWorkers?: number;
}

export async function runConcurrency(options: ConcurrencyOptions): Promise<BenchTable> {
  const maxN = Math.max(...options.levels.map(([n]) => n));
  const bb = await startBenchBridge(withoutClientLimits({ allowAnonymous: true, mediaWorkers: options.mediaWorkers ?? 1 }));
  const worker = new Child<WorkerCommand, WorkerEvent>(new URL('./lib/camera-worker.ts', import.meta.url));
  const results = new Map<string, RoundResult[]>();
  try {
    for (const path of PATHS) await round(worker, bb, path, 1, options.timeoutMs); // warm-up, not counted
    for (const [n, rounds] of options.levels) {
      for (let r = 0; r < rounds; r++) {
        for (const path of PATHS) {
          const key = `${n}:${path}`;
          const list = results.get(key) ?? [];
          list.push(await round(worker, bb, path, n, options.timeoutMs));
          results.set(key, list);
        }
      }
    }
  } finally {
    await worker.close();
    await bb.close();
  }

  const rows: string[][] = [];
  const data: Record<string, LevelFigures> = {};
  const charts: { label: string; samples: number[] }[] = [];
  for (const [n] of options.levels) {
    const floorTtff = summarize((results.get(`${n}:floor`) ?? []).flatMap((r) => r.ttff));
    for (const path of PATHS) {
      const list = results.get(`${n}:${path}`) ?? [];
      const ttffSamples = list.flatMap((r) => r.ttff);
      const ttff = summarize(ttffSamples);
      const answer = summarize(list.flatMap((r) => r.answer));
      const connected = summarize(list.flatMap((r) => r.connected));
      const failed = list.reduce((a, r) => a + r.failed, 0);
      const cpuMsPerCamera = list.reduce((a, r) => a + r.answererCpuMs, 0) / Math.max(1, list.length * n);
      data[`${n}:${path}`] = { ttff, answer, connected, failed, cpuMsPerCamera };
      charts.push({ label: `${n} × ${PATH_LABELS[path]}`, samples: ttffSamples });
      rows.push([
        String(n),
        PATH_LABELS[path],
        String(ttff.n),
        `${fmt(answer.p50)} / ${fmt(answer.p99)}`,
        `${fmt(connected.p50)} / ${fmt(connected.p99)}`,
        fmt(ttff.p50),
        fmt(ttff.p95),
        fmt(ttff.p99),
        path === 'floor' ? 'baseline' : `${fmtRatio(ratio(ttff.p50, floorTtff.p50))} / ${fmtRatio(ratio(ttff.p99, floorTtff.p99))}`,
        fmt(cpuMsPerCamera, 0),
        String(failed),
      ]);
    }
  }
  const top = data[`${maxN}:mqtt`];
  const one = data[`1:mqtt`];
  return {
    id: 'concurrency',
    title: 'Concurrency: cameras negotiating at once, time to first frame (ms)',
    columns: ['cameras', 'path', 'samples', 'answer p50/p99', 'connected p50/p99', 'first frame p50', 'p95', 'p99', 'ratio to floor p50/p99', 'answering CPU ms/camera', 'failed'],
    rows,
    notes: [
      `Rounds per level: ${options.levels.map(([n, r]) => `${n} cameras × ${r}`).join(', ')}; paths interleaved within each round; one warm-up round per path not counted.`,
      `Cameras in a child process; answering side (floor answerers or the bridge) in the measuring process. Each camera streams the ~300 kbit/s VP8 clip from connected until its first frame reached the answerer, then stops: the figures are of negotiating, not of carrying 100 streams (see the relay table).`,
      'The bridge runs with allowAnonymous so 100 devices need no scrypt-hashed secrets (connection setup is not timed either way).',
      '"answering CPU ms/camera": CPU of the answering process from the offers to the last first frame (user + system) divided by cameras — ICE, DTLS and the first SRTP packets.',
    ],
    bottleneck: top && one ? concurrencyBottleneck(maxN, data, one) : undefined,
    data,
    charts: [{ title: 'Time to first frame, by cameras at once', unit: 'ms', series: charts }],
  };
}

/** The MQTT path's figures at the most cameras at once (for the combined table's note). */
export function concurrencySummary(table: BenchTable): string {
  const data = table.data as Record<string, LevelFigures>;
  const key = Object.keys(data).filter((k) => k.endsWith(':mqtt')).sort((a, b) => Number(b.split(':')[0]) - Number(a.split(':')[0]))[0];
  const d = key === undefined ? undefined : data[key];
  return d ? `${key!.split(':')[0]} cameras over MQTT: answer p50 ${fmt(d.answer.p50)} ms, first frame p50 ${fmt(d.ttff.p50)} ms, answering CPU ${fmt(d.cpuMsPerCamera, 0)} ms/camera` : 'no figures';
}
