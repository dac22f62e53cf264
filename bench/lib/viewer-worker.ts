/**
 * A child process holding many viewers: each an MQTT client with a viewer identity and a recvonly werift peer that
 * watches one camera through the bridge's relay and counts what arrives (packets, sequence-number gaps). Its CPU is
 * not charged to the bridge. IPC:
 *
 *   { cmd: 'add', url, root, viewers: [{ id, secret, deviceId }] }  → { type: 'added', connected, failed }
 *   { cmd: 'stats' }                                                 → totals, and this process's CPU and loop delay
 *   { cmd: 'keep', n }                                               all but the n first viewers say bye and close → { type: 'kept', viewers }
 */
import type { MqttClient } from 'mqtt';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { RTCPeerConnection } from 'werift';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { PROTOCOL_VERSION, Topics } from '../../src/protocol/topics.ts';
import { codecParameters } from '../../src/webrtc/codecs.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';
import { sessionId } from './camera.ts';
import { withTimeout } from './util.ts';

export type ViewerCommand = { cmd: 'add'; url: string; root: string; viewers: { id: string; secret: string; deviceId: string }[] } | { cmd: 'stats' } | { cmd: 'keep'; n: number };
export interface ViewerTotals {
  viewers: number;
  received: number;
  /** Highest sequence number seen minus the first, summed over viewers (packets the viewers should have got). */
  expected: number;
  cpuMs: number;
  eldP99: number;
}
export type ViewerEvent = { type: 'added'; connected: number; failed: number; errors: string[] } | { type: 'stats'; totals: ViewerTotals } | { type: 'kept'; viewers: number } | { type: 'error'; message: string };

interface Viewer {
  received: number;
  firstSeq: number | undefined;
  /** Unwrapped highest sequence number. */
  maxSeq: number;
  /** Says bye on its connection and closes its peer. */
  close(): Promise<void>;
}

const send = (e: ViewerEvent) => process.send?.(e);
const viewers: Viewer[] = [];
/** Removed viewers' counts, so totals never go down. */
const gone = { received: 0, expected: 0 };
const clients = new Map<string, { client: MqttClient; clientId: string; waiters: Map<string, (sdp: string) => void> }>();
const eld = monitorEventLoopDelay({ resolution: 5 });
eld.enable();
let lastCpu = process.cpuUsage();

/**
 * The bridge's login throttle answers CONNACK 3 (server unavailable: its scrypt slots are busy, a few per address)
 * when many viewers log in at once from one address: try again shortly, as a viewer SDK would.
 */
async function connectRetrying(options: Parameters<typeof connectMqtt>[0]): Promise<MqttClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectMqtt(options);
    } catch (err) {
      if (attempt >= 30 || !/unavailable/i.test((err as Error).message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

async function clientFor(url: string, root: string, id: string, secret: string) {
  let entry = clients.get(id);
  if (entry) return entry;
  const topics = new Topics(root);
  const clientId = `${id}:${Math.random().toString(36).slice(2, 8)}`;
  const client = await connectRetrying({ target: url, clientId, username: id, password: secret });
  const waiters = new Map<string, (sdp: string) => void>();
  client.on('message', (_t, payload) => {
    const m = JSON.parse(payload.toString()) as { type: string; sessionId?: string; sdp?: string };
    if (m.type === 'answer' && m.sessionId) waiters.get(m.sessionId)?.(m.sdp ?? '');
  });
  await client.subscribeAsync(topics.viewer(id, clientId, 'down'), { qos: 1 });
  entry = { client, clientId, waiters };
  clients.set(id, entry);
  return entry;
}

async function addViewer(url: string, root: string, v: { id: string; secret: string; deviceId: string }): Promise<void> {
  const { client, clientId, waiters } = await clientFor(url, root, v.id, v.secret);
  const topics = new Topics(root);
  const pc = new RTCPeerConnection({ codecs: { video: [codecParameters('VP8')], audio: [] }, iceServers: [] });
  pc.addTransceiver('video', { direction: 'recvonly' });
  const sid = sessionId();
  const stats: Viewer = {
    received: 0,
    firstSeq: undefined,
    maxSeq: 0,
    close: async () => {
      const bye = { v: PROTOCOL_VERSION, type: 'bye', sessionId: sid, seq: 2, ts: Date.now(), reason: 'normal' };
      await client.publishAsync(topics.viewer(v.id, clientId, 'up'), JSON.stringify(bye), { qos: 1 }).catch(() => {});
      await pc.close().catch(() => {});
    },
  };
  pc.onTrack.subscribe((track) =>
    track.onReceiveRtp.subscribe((packet) => {
      const seq = packet.header.sequenceNumber;
      stats.received++;
      if (stats.firstSeq === undefined) {
        stats.firstSeq = seq;
        stats.maxSeq = seq;
        return;
      }
      // Unwrap against the highest seen (RFC 3550 A.1 style).
      const last = stats.maxSeq & 0xffff;
      let delta = seq - last;
      if (delta < -0x8000) delta += 0x10000;
      else if (delta > 0x8000) delta -= 0x10000;
      if (delta > 0) stats.maxSeq += delta;
    }),
  );
  const offer = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(offer);
  const answered = new Promise<string>((resolve) => waiters.set(sid, resolve));
  const connected = new Promise<void>((resolve) => pc.connectionStateChange.subscribe((s) => s === 'connected' && resolve()));
  const watch = { v: PROTOCOL_VERSION, type: 'watch', sessionId: sid, seq: 1, ts: Date.now(), deviceId: v.deviceId, sdp: pc.localDescription?.sdp };
  await client.publishAsync(topics.viewer(v.id, clientId, 'up'), JSON.stringify(watch), { qos: 1 });
  const answer = await withTimeout(answered, 20_000, 'viewer answer');
  waiters.delete(sid);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  await withTimeout(connected, 20_000, 'viewer connected');
  viewers.push(stats);
}

const expectedOf = (v: Viewer) => (v.firstSeq === undefined ? 0 : v.maxSeq - v.firstSeq + 1);

process.on('message', (m: ViewerCommand) => {
  const run = async () => {
    if (m.cmd === 'add') {
      let failed = 0;
      const errors: string[] = [];
      // A few at a time: each negotiation costs ~40 ms CPU on each side.
      const queue = [...m.viewers];
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let v = queue.shift(); v; v = queue.shift()) {
            // One retry, as a real viewer would: on a starved machine a DTLS handshake can time out in werift.
            const viewer = v;
            await addViewer(m.url, m.root, viewer)
              .catch(() => addViewer(m.url, m.root, viewer))
              .catch((err: Error) => {
                failed++;
                if (errors.length < 3) errors.push(err.message);
              });
          }
        }),
      );
      send({ type: 'added', connected: viewers.length, failed, errors });
    } else if (m.cmd === 'stats') {
      const cpu = process.cpuUsage(lastCpu);
      lastCpu = process.cpuUsage();
      const totals: ViewerTotals = {
        viewers: viewers.length,
        received: gone.received + viewers.reduce((a, v) => a + v.received, 0),
        expected: gone.expected + viewers.reduce((a, v) => a + expectedOf(v), 0),
        cpuMs: (cpu.user + cpu.system) / 1000,
        eldP99: eld.percentile(99) / 1e6,
      };
      eld.reset();
      send({ type: 'stats', totals });
    } else if (m.cmd === 'keep') {
      const removed = viewers.splice(m.n);
      for (const v of removed) {
        gone.received += v.received;
        gone.expected += expectedOf(v);
      }
      await Promise.all(removed.map((v) => v.close()));
      send({ type: 'kept', viewers: viewers.length });
    }
  };
  run().catch((err: Error) => send({ type: 'error', message: err.stack ?? err.message }));
});
process.on('disconnect', () => process.exit(0));
