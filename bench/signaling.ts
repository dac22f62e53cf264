/**
 * 1. Signaling overhead: offer → answer, → connected, → first RTP, → first keyframe.
 *
 * The floor is two werift peers signaling in-process (the answerer configured as tali's: recvonly, one video codec,
 * the camera's end-of-candidates applied). tali's path is the same camera peer publishing its offer over MQTT/TCP or
 * MQTT/WebSocket to a real bridge running in this process, whose answerer replies on the device's down topic. Both
 * are timed on one clock: t0 just before the offer leaves the camera; "answer" when the camera holds the answer;
 * "connected", "first RTP" and "first keyframe" at the answerer. Paths are interleaved round by round so that noise
 * on this shared machine hits them alike; the first rounds are warm-up and not counted.
 */
import type { MqttClient } from 'mqtt';
import { RTCPeerConnection } from 'werift';
import type { CameraSession as Session } from '../src/answerer/session.ts';
import { connectMqtt } from '../src/mqtt/connect.ts';
import { Topics } from '../src/protocol/topics.ts';
import { codecParameters } from '../src/webrtc/codecs.ts';
import { startsKeyframe } from '../src/webrtc/keyframe.ts';
import { startBenchBridge, type BenchBridge } from './lib/bridge.ts';
import { withoutDefaultStun } from '../src/webrtc/default-stun.ts';
import { createCameraPeer, sessionId, upMessage } from './lib/camera.ts';
import type { BenchTable } from './lib/report.ts';
import { fmt, fmtRatio, ratio, summarize, type Summary } from './lib/stats.ts';
import { withTimeout } from './lib/util.ts';

export const MILESTONES = ['answer', 'connected', 'firstRtp', 'firstKeyframe'] as const;
export type Milestone = (typeof MILESTONES)[number];
export type Timings = Record<Milestone, number>;
const LABELS: Record<Milestone, string> = {
  answer: 'offer → answer',
  connected: '→ connected',
  firstRtp: '→ first RTP',
  firstKeyframe: '→ first keyframe',
};

export const PATHS = ['floor', 'mqtt', 'ws'] as const;
type Path = (typeof PATHS)[number];
const PATH_LABELS: Record<Path, string> = {
  floor: 'floor: werift ↔ werift in-process',
  mqtt: 'tali over MQTT/TCP',
  ws: 'tali over MQTT/WebSocket',
};

/** The floor: the offer handed straight to a bare werift answerer. */
export async function floorOnce(): Promise<Timings> {
  const camera = await createCameraPeer();
  const answerer = new RTCPeerConnection({ codecs: { video: [codecParameters('VP8')], audio: [] }, iceServers: [] });
  const t: Partial<Timings> = {};
  let t0 = 0;
  const mark = (m: Milestone) => (t[m] ??= performance.now() - t0);
  const keyframe = new Promise<void>((resolve) => {
    answerer.connectionStateChange.subscribe((s) => s === 'connected' && mark('connected'));
    answerer.onTrack.subscribe((track) =>
      track.onReceiveRtp.subscribe((packet) => {
        mark('firstRtp');
        if (startsKeyframe('VP8', packet.payload)) (mark('firstKeyframe'), resolve());
      }),
    );
  });
  void camera.connected.then(() => camera.startMedia());
  try {
    t0 = performance.now();
    await answerer.setRemoteDescription({ type: 'offer', sdp: camera.offerSdp });
    void answerer.addIceCandidate(null).catch(() => {}); // the camera's end-of-candidates, as tali gets it
    const created = await answerer.createAnswer();
    withoutDefaultStun(answerer);
    await answerer.setLocalDescription(created);
    const answer = answerer.localDescription?.sdp ?? '';
    mark('answer');
    await camera.applyAnswer(answer);
    await withTimeout(keyframe, 10_000, 'first keyframe (floor)');
    return t as Timings;
  } finally {
    await camera.stop();
    await answerer.close().catch(() => {});
  }
}

export interface TaliCamera {
  deviceId: string;
  client: MqttClient;
  topics: Topics;
}

/** Connects a device to the bridge (not timed): credentials, subscription to its down topic. */
export async function connectDevice(bb: BenchBridge, url: string, deviceId: string): Promise<TaliCamera> {
  const secret = await bb.bridge.credentials.add(deviceId, 'device', { replace: true });
  const topics = new Topics(bb.bridge.config.root);
  const client = await connectMqtt({ target: url, clientId: deviceId, username: deviceId, password: secret });
  await client.subscribeAsync(topics.device(deviceId, 'down'), { qos: 1 });
  return { deviceId, client, topics };
}

/** tali's path: the same camera, its offer published over MQTT to the bridge's answerer. */
export async function taliOnce(bb: BenchBridge, device: TaliCamera, bridgeTimelines?: Record<string, number>[]): Promise<Timings> {
  const camera = await createCameraPeer();
  const sid = sessionId();
  const { client, topics, deviceId } = device;
  const up = topics.device(deviceId, 'up');
  const t: Partial<Timings> = {};
  let t0 = 0;
  const mark = (m: Milestone) => (t[m] ??= performance.now() - t0);
  let session: Session | undefined;
  const closed = new Promise<void>((resolve) => {
    const onSession = (s: Session) => {
      if (s.sessionId !== sid) return;
      bb.bridge.answerer.off('session', onSession);
      session = s;
      s.on('state', (state) => state === 'connected' && mark('connected'));
      s.on('state', (state) => state === 'streaming' && mark('firstRtp')); // streaming = its first RTP
      s.once('closed', () => resolve());
    };
    bb.bridge.answerer.on('session', onSession);
  });
  const keyframe = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (session === undefined) return;
      clearInterval(check);
      session.once('keyframe', () => (mark('firstKeyframe'), resolve()));
    }, 0);
  });
  const answered = new Promise<string>((resolve) => {
    const onMessage = (_topic: string, payload: Buffer) => {
      const m = JSON.parse(payload.toString()) as { type: string; sessionId?: string; sdp?: string };
      if (m.type !== 'answer' || m.sessionId !== sid) return;
      client.off('message', onMessage);
      mark('answer');
      resolve(m.sdp ?? '');
    };
    client.on('message', onMessage);
  });
  void camera.connected.then(() => camera.startMedia());
  try {
    t0 = performance.now();
    client.publish(up, upMessage('offer', sid, 1, { sdp: camera.offerSdp }), { qos: 1 });
    client.publish(up, upMessage('candidate', sid, 2, { endOfCandidates: true }), { qos: 1 });
    await camera.applyAnswer(await withTimeout(answered, 10_000, 'answer'));
    await withTimeout(keyframe, 10_000, 'first keyframe (tali)');
    return t as Timings;
  } finally {
    if (session) bridgeTimelines?.push({ ...session.stats.timeline });
    client.publish(up, upMessage('bye', sid, 3, { reason: 'normal' }), { qos: 1 });
    await withTimeout(closed, 5000, 'session closed').catch(() => {});
    await camera.stop();
  }
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : '−'}${fmt(Math.abs(x))}`;
}

export interface SignalingOptions {
  rounds: number;
  warmup: number;
}

export async function runSignaling(options: SignalingOptions): Promise<BenchTable> {
  const bb = await startBenchBridge();
  const samples: Record<Path, Timings[]> = { floor: [], mqtt: [], ws: [] };
  const bridgeTimelines: Record<string, number>[] = [];
  try {
    const devices: Record<'mqtt' | 'ws', TaliCamera> = {
      mqtt: await connectDevice(bb, bb.bridge.mqttUrl, 'bench-sig-tcp'),
      ws: await connectDevice(bb, bb.bridge.wsUrl, 'bench-sig-ws'),
    };
    for (let round = 0; round < options.warmup + options.rounds; round++) {
      // Rotate the order each round: no path always runs right after another's teardown.
      const order = PATHS.map((_, i) => PATHS[(i + round) % PATHS.length] as Path);
      for (const path of order) {
        const counted = round >= options.warmup;
        const timings = path === 'floor' ? await floorOnce() : await taliOnce(bb, devices[path], counted ? bridgeTimelines : undefined);
        if (counted) samples[path].push(timings);
      }
    }
    for (const d of Object.values(devices)) await d.client.endAsync();
  } finally {
    await bb.close();
  }

  const summaries = {} as Record<Path, Record<Milestone, Summary>>;
  for (const path of PATHS) {
    summaries[path] = {} as Record<Milestone, Summary>;
    for (const m of MILESTONES) summaries[path][m] = summarize(samples[path].map((t) => t[m]));
  }
  const rows: string[][] = [];
  for (const m of MILESTONES) {
    for (const path of PATHS) {
      const s = summaries[path][m];
      const floor = summaries.floor[m];
      rows.push([
        LABELS[m],
        PATH_LABELS[path],
        fmt(s.p50),
        fmt(s.p95),
        fmt(s.p99),
        path === 'floor' ? 'baseline' : signed(s.p50 - floor.p50),
        path === 'floor' ? '1.00×' : fmtRatio(ratio(s.p50, floor.p50)),
      ]);
    }
  }
  const added = (p: 'mqtt' | 'ws') => summaries[p].firstKeyframe.p50 - summaries.floor.firstKeyframe.p50;
  const goal = (p: 'mqtt' | 'ws') => (added(p) <= 10 ? 'met' : 'missed');
  const n = samples.floor.length;
  // Where the time goes, by the bridge's own session timeline (ms since it received the offer).
  const phase = (from: string, to: string) => summarize(bridgeTimelines.map((tl) => (tl[to] ?? NaN) - (tl[from] ?? 0))).p50;
  const breakdown = {
    answer: phase('offer', 'answer'),
    ice: phase('answer', 'iceConnected'),
    dtls: phase('iceConnected', 'connected'),
    media: phase('connected', 'firstKeyframe'),
  };
  return {
    id: 'signaling',
    title: 'Signaling overhead (ms from the offer leaving the camera)',
    columns: ['milestone', 'path', 'p50', 'p95', 'p99', 'tali − floor p50', 'ratio p50'],
    rows,
    notes: [
      `${n} negotiations per path (after ${options.warmup} warm-up rounds), paths interleaved; VP8 clip, one video track; bridge logs at info to /dev/null.`,
      `Goal "tali adds ≤ 10 ms at p50" (to first keyframe): MQTT/TCP ${signed(added('mqtt'))} ms (${goal('mqtt')}), MQTT/WS ${signed(added('ws'))} ms (${goal('ws')}).`,
      `The bridge's own timeline (p50, ms): answer ready ${fmt(breakdown.answer)} after the offer arrived; ICE connected ${fmt(breakdown.ice)} later; DTLS ${fmt(breakdown.dtls)} more; first keyframe ${fmt(breakdown.media)} after that.`,
    ],
    bottleneck: `werift's ICE + DTLS, not signaling: about ${fmt(breakdown.ice + breakdown.dtls, 0)} of the ~${fmt(summaries.mqtt.connected.p50, 0)} ms to connected is ICE checks and the DTLS handshake on loopback, identical for the floor; MQTT adds ~${fmt(summaries.mqtt.answer.p50 - summaries.floor.answer.p50)} ms (TCP) / ${fmt(summaries.ws.answer.p50 - summaries.floor.answer.p50)} ms (WS) to offer → answer.`,
    data: { summaries, samples, bridgeTimeline: breakdown },
    charts: [
      {
        title: 'Offer → first keyframe',
        unit: 'ms',
        series: PATHS.map((p) => ({ label: PATH_LABELS[p], samples: samples[p].map((t) => t.firstKeyframe) })),
      },
      {
        title: 'Offer → answer',
        unit: 'ms',
        series: PATHS.map((p) => ({ label: PATH_LABELS[p], samples: samples[p].map((t) => t.answer) })),
      },
    ],
  };
}
