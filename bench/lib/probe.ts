/**
 * The signaling probe: a light child process (two MQTT clients, no media) that times what a camera and a viewer wait
 * for at the MQTT messages, one negotiation at a time:
 *
 *   offer → answer   a camera publishes an offer (+ end-of-candidates) on its up topic; timed until the answer arrives
 *                    on its down topic; then bye
 *   watch → answer   a viewer publishes a watch of a streaming camera on its up topic; timed until the answer arrives
 *                    on its down topic; then bye
 *
 * The SDPs are made once by werift before any timing (a sendonly VP8 offer as the device SDK makes, a recvonly one
 * as a viewer makes), without candidates and with fresh ICE credentials per probe: the bridge answers each with a new
 * peer, the probe never connects one, so no media and no ICE or DTLS work is added to the bridge by the probe. IPC:
 *
 *   { cmd: 'prepare', url, root, cameraId, viewer: { id, secret }, deviceId }   → { type: 'ready' }
 *   { cmd: 'run', count, gapMs }   count probes of each kind, alternating, gapMs apart → { type: 'probed', offer, watch, failed }
 *                                  (fewer after 5 failures of one kind in a row)
 */
import type { MqttClient } from 'mqtt';
import { RTCPeerConnection } from 'werift';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { CLIENT_ID_SEPARATOR } from '../../src/protocol/client-ids.ts';
import { PROTOCOL_VERSION, Topics } from '../../src/protocol/topics.ts';
import { codecParameters } from '../../src/webrtc/codecs.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';
import { sessionId, upMessage } from './camera.ts';
import { sleep, withTimeout } from './util.ts';

export type ProbeCommand =
  | { cmd: 'prepare'; url: string; root: string; cameraId: string; viewer: { id: string; secret: string }; deviceId: string }
  | { cmd: 'run'; count: number; gapMs: number };
export type ProbeEvent =
  | { type: 'ready' }
  /** Milliseconds from publishing to the answer's arrival, per probe; failed: probes with no answer within 10 s. */
  | { type: 'probed'; offer: number[]; watch: number[]; failed: string[] }
  | { type: 'error'; message: string };

const ANSWER_TIMEOUT_MS = 10_000;
/** A phase ends early after this many failed probes of one kind in a row (a bridge that stopped answering, a closed connection). */
const GIVE_UP_AFTER = 5;
const send = (e: ProbeEvent) => process.send?.(e);

interface Waiter {
  resolve(sdp: string): void;
  reject(err: Error): void;
}
interface Side {
  client: MqttClient;
  up: string;
  sdp: string;
  answers: Map<string, Waiter>;
}
let camera: Side | undefined;
let viewer: (Side & { deviceId: string }) | undefined;

async function offerSdp(direction: 'sendonly' | 'recvonly'): Promise<string> {
  const pc = new RTCPeerConnection({ codecs: { video: [codecParameters('VP8')], audio: [] }, iceServers: [], bundlePolicy: 'max-bundle' });
  pc.addTransceiver('video', { direction });
  const offer = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(offer);
  const sdp = pc.localDescription?.sdp ?? '';
  await pc.close();
  return sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates')
    .join('\r\n');
}

/** The same offer with ICE credentials of its own (RFC 8839 §5.4: ufrag 4–256 chars, pwd 22–256). */
function fresh(sdp: string): string {
  return sdp.replace(/^a=ice-ufrag:.*$/m, `a=ice-ufrag:${sessionId().slice(0, 8)}`).replace(/^a=ice-pwd:.*$/m, `a=ice-pwd:${sessionId()}`);
}

/** Answers resolve their probe; an error or a bye for it from the bridge fails it at once, saying why. */
function listen(client: MqttClient, answers: Map<string, Waiter>): void {
  client.on('close', () => process.env.BENCH_DEBUG && console.error(`[probe] ${client.options.clientId} closed`));
  client.on('message', (_topic, payload) => {
    const m = JSON.parse(payload.toString()) as { type: string; sessionId?: string; sdp?: string; code?: string; message?: string; reason?: string };
    const waiter = m.sessionId === undefined ? undefined : answers.get(m.sessionId);
    if (m.type === 'answer') waiter?.resolve(m.sdp ?? '');
    else if (m.type === 'error' || m.type === 'bye') waiter?.reject(new Error(`${m.type} ${m.code ?? m.reason ?? ''} ${m.message ?? ''}`.trim()));
  });
}

async function prepare(c: Extract<ProbeCommand, { cmd: 'prepare' }>): Promise<void> {
  const topics = new Topics(c.root);
  // allowAnonymous bridge: the client ID is the device ID. Its online card, as a device publishes it.
  const cam = await connectMqtt({ target: c.url, clientId: c.cameraId });
  const camAnswers = new Map<string, Waiter>();
  listen(cam, camAnswers);
  await cam.subscribeAsync(topics.device(c.cameraId, 'down'), { qos: 1 });
  const card = { v: PROTOCOL_VERSION, type: 'status', ts: Date.now(), state: 'online' };
  await cam.publishAsync(topics.device(c.cameraId, 'status'), JSON.stringify(card), { qos: 1, retain: true });
  camera = { client: cam, up: topics.device(c.cameraId, 'up'), sdp: await offerSdp('sendonly'), answers: camAnswers };

  const clientId = `${c.viewer.id}${CLIENT_ID_SEPARATOR}probe`;
  const vc = await connectMqtt({ target: c.url, clientId, username: c.viewer.id, password: c.viewer.secret });
  const viewerAnswers = new Map<string, Waiter>();
  listen(vc, viewerAnswers);
  await vc.subscribeAsync(topics.viewer(c.viewer.id, clientId, 'down'), { qos: 1 });
  viewer = { client: vc, up: topics.viewer(c.viewer.id, clientId, 'up'), sdp: await offerSdp('recvonly'), answers: viewerAnswers, deviceId: c.deviceId };
  send({ type: 'ready' });
}

/** One negotiation: publish, wait for the answer (the timed part), then bye. */
async function probe(side: Side, opening: (sid: string) => string[], bye: (sid: string) => string): Promise<number> {
  if (!side.client.connected) throw new Error('MQTT connection closed');
  const sid = sessionId();
  const answered = new Promise<string>((resolve, reject) => side.answers.set(sid, { resolve, reject }));
  const t0 = performance.now();
  for (const message of opening(sid)) side.client.publish(side.up, message, { qos: 1 });
  try {
    await withTimeout(answered, ANSWER_TIMEOUT_MS, 'answer');
    return performance.now() - t0;
  } finally {
    side.answers.delete(sid);
    await side.client.publishAsync(side.up, bye(sid), { qos: 1 });
  }
}

const offerProbe = (cam: Side) =>
  probe(
    cam,
    (sid) => [upMessage('offer', sid, 1, { sdp: fresh(cam.sdp) }), upMessage('candidate', sid, 2, { endOfCandidates: true })],
    (sid) => upMessage('bye', sid, 3, { reason: 'normal' }),
  );

const watchProbe = (v: Side & { deviceId: string }) =>
  probe(
    v,
    (sid) => [JSON.stringify({ v: PROTOCOL_VERSION, type: 'watch', sessionId: sid, seq: 1, ts: Date.now(), deviceId: v.deviceId, sdp: fresh(v.sdp) })],
    (sid) => JSON.stringify({ v: PROTOCOL_VERSION, type: 'bye', sessionId: sid, seq: 2, ts: Date.now(), reason: 'normal' }),
  );

async function run(count: number, gapMs: number): Promise<void> {
  if (!camera || !viewer) throw new Error('probe: run before prepare');
  const offer: number[] = [];
  const watch: number[] = [];
  const failed: string[] = [];
  const inARow = { offer: 0, watch: 0 };
  for (let i = 0; i < count && Math.max(inARow.offer, inARow.watch) < GIVE_UP_AFTER; i++) {
    for (const [kind, samples, once] of [
      ['offer', offer, () => offerProbe(camera as Side)],
      ['watch', watch, () => watchProbe(viewer as Side & { deviceId: string })],
    ] as const) {
      await once().then(
        (ms) => {
          samples.push(ms);
          inARow[kind] = 0;
        },
        (err: Error) => {
          failed.push(`${kind}: ${err.message}`);
          inARow[kind]++;
          if (process.env.BENCH_DEBUG) console.error(`[probe] ${kind} failed: ${err.message}`);
        },
      );
      await sleep(gapMs);
    }
  }
  send({ type: 'probed', offer, watch, failed });
}

process.on('message', (m: ProbeCommand) => {
  const step = m.cmd === 'prepare' ? prepare(m) : run(m.count, m.gapMs);
  step.catch((err: Error) => send({ type: 'error', message: err.stack ?? err.message }));
});
process.on('disconnect', () => {
  void Promise.all([camera?.client.endAsync(), viewer?.client.endAsync()]).finally(() => process.exit(0));
});
