/**
 * 6. Bytes on the wire for one complete signaling exchange — offer, the camera's end-of-candidates, answer (with
 * the bridge's candidates in its SDP), bye — over MQTT/TCP, MQTT/WebSocket, and a plain-WebSocket JSON signaling
 * server (bench/lib/ws-signaling.ts) as the baseline. Counted on the camera's TCP socket (bytesRead/bytesWritten:
 * everything above TCP — MQTT or WebSocket framing, QoS 1 acknowledgements, topic names, the JSON), from just before
 * the offer until the bye is acknowledged and the line is quiet. Connection setup (CONNECT with credentials and will,
 * SUBSCRIBE, the status card, the retained bridge card; or the HTTP upgrade) is counted separately: a camera pays it
 * once per connection, not per session. The same camera peer, SDP and JSON payloads go over each transport.
 */
import type { MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import { connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { createWebSocketStream, WebSocket } from 'ws';
import { connectMqtt } from '../src/mqtt/connect.ts';
import { PROTOCOL_VERSION, Topics } from '../src/protocol/topics.ts';
import { startBenchBridge, type BenchBridge } from './lib/bridge.ts';
import { createCameraPeer, sessionId, upMessage } from './lib/camera.ts';
import type { BenchTable } from './lib/report.ts';
import { fmtInt, fmtRatio, ratio } from './lib/stats.ts';
import { sleep, withTimeout } from './lib/util.ts';
import { startWsSignaling } from './lib/ws-signaling.ts';

interface Count {
  transport: string;
  setupUp: number;
  setupDown: number;
  up: number;
  down: number;
  messages: number;
  payload: number;
}

const QUIET_MS = 150;

async function mqttExchange(bb: BenchBridge, transport: 'mqtt' | 'ws', deviceId: string, secret: string): Promise<Count> {
  const topics = new Topics(bb.bridge.config.root);
  let socket: Socket | undefined;
  const build = (): Duplex => {
    if (transport === 'mqtt') {
      socket = netConnect({ host: '127.0.0.1', port: bb.bridge.mqttPort, noDelay: true });
      return socket;
    }
    const ws = new WebSocket(bb.bridge.wsUrl, 'mqtt', { perMessageDeflate: false });
    ws.once('upgrade', (res) => ((socket = res.socket as Socket), socket.setNoDelay(true)));
    const stream = createWebSocketStream(ws);
    ws.once('close', () => stream.destroy());
    return stream;
  };
  const card = (state: string) => JSON.stringify({ v: PROTOCOL_VERSION, type: 'status', ts: Date.now(), state, model: 'bench camera', firmware: '1.0.0', sdk: 'tali-device-sdk/0.1.0', codecs: { video: ['VP8'], audio: [] } });
  const client: MqttClient = await connectMqtt({
    target: build,
    clientId: deviceId,
    username: deviceId,
    password: secret,
    will: { topic: topics.device(deviceId, 'status'), payload: Buffer.from(card('offline')), qos: 1, retain: true },
  });
  const bridgeCard = new Promise<void>((resolve) => client.once('message', () => resolve()));
  await client.subscribeAsync([topics.device(deviceId, 'down'), topics.allBridges()], { qos: 1 });
  await client.publishAsync(topics.device(deviceId, 'status'), card('online'), { qos: 1, retain: true });
  await withTimeout(bridgeCard, 5000, 'bridge card');
  await sleep(QUIET_MS);
  const s = socket as Socket;
  const setup = { up: s.bytesWritten, down: s.bytesRead };

  const camera = await createCameraPeer();
  const sid = sessionId();
  let payload = 0;
  let messages = 0;
  const up = topics.device(deviceId, 'up');
  const answered = new Promise<string>((resolve) =>
    client.on('message', (topic, body) => {
      if (topic !== topics.device(deviceId, 'down')) return;
      payload += body.length;
      messages++;
      const m = JSON.parse(body.toString()) as { type: string; sdp?: string };
      if (m.type === 'answer') resolve(m.sdp ?? '');
    }),
  );
  const publish = async (body: string) => {
    payload += Buffer.byteLength(body);
    messages++;
    await client.publishAsync(up, body, { qos: 1 });
  };
  await publish(upMessage('offer', sid, 1, { sdp: camera.offerSdp }));
  await publish(upMessage('candidate', sid, 2, { endOfCandidates: true }));
  await camera.applyAnswer(await withTimeout(answered, 10_000, 'answer'));
  await withTimeout(camera.connected, 10_000, 'connected');
  await publish(upMessage('bye', sid, 3, { reason: 'normal' }));
  await sleep(QUIET_MS);
  const count: Count = {
    transport: transport === 'mqtt' ? 'MQTT/TCP' : 'MQTT/WebSocket',
    setupUp: setup.up,
    setupDown: setup.down,
    up: s.bytesWritten - setup.up,
    down: s.bytesRead - setup.down,
    messages,
    payload,
  };
  await camera.stop();
  await client.endAsync();
  return count;
}

async function plainWsExchange(): Promise<Count> {
  const server = await startWsSignaling();
  try {
    const ws = new WebSocket(`${server.url}?device=bench-wire-plain`, { perMessageDeflate: false });
    let socket: Socket | undefined;
    ws.once('upgrade', (res) => ((socket = res.socket as Socket), socket.setNoDelay(true)));
    await new Promise<void>((resolve, reject) => (ws.once('open', () => resolve()), ws.once('error', reject)));
    await sleep(QUIET_MS);
    const s = socket as Socket;
    const setup = { up: s.bytesWritten, down: s.bytesRead };
    const camera = await createCameraPeer();
    const sid = sessionId();
    let payload = 0;
    let messages = 0;
    const answered = new Promise<string>((resolve) =>
      ws.on('message', (data: Buffer) => {
        payload += data.length;
        messages++;
        const m = JSON.parse(data.toString()) as { type: string; sdp?: string };
        if (m.type === 'answer') resolve(m.sdp ?? '');
      }),
    );
    const sendJson = (body: string) => {
      payload += Buffer.byteLength(body);
      messages++;
      ws.send(body);
    };
    sendJson(upMessage('offer', sid, 1, { sdp: camera.offerSdp }));
    sendJson(upMessage('candidate', sid, 2, { endOfCandidates: true }));
    await camera.applyAnswer(await withTimeout(answered, 10_000, 'answer'));
    await withTimeout(camera.connected, 10_000, 'connected');
    sendJson(upMessage('bye', sid, 3, { reason: 'normal' }));
    await sleep(QUIET_MS);
    const count: Count = {
      transport: 'plain WebSocket + JSON (baseline)',
      setupUp: setup.up,
      setupDown: setup.down,
      up: s.bytesWritten - setup.up,
      down: s.bytesRead - setup.down,
      messages,
      payload,
    };
    await camera.stop();
    ws.close();
    return count;
  } finally {
    await server.close();
  }
}

export async function runWireBytes(): Promise<BenchTable> {
  const bb = await startBenchBridge();
  const counts: Count[] = [];
  try {
    for (const transport of ['mqtt', 'ws'] as const) {
      const id = `bench-wire-${transport}`;
      const secret = await bb.bridge.credentials.add(id, 'device', { replace: true });
      counts.push(await mqttExchange(bb, transport, id, secret));
    }
  } finally {
    await bb.close();
  }
  counts.push(await plainWsExchange());
  const base = counts.at(-1) as Count;
  const rows = counts.map((c) => [
    c.transport,
    fmtInt(c.up),
    fmtInt(c.down),
    fmtInt(c.up + c.down),
    String(c.messages),
    fmtInt(c.payload),
    fmtInt(c.up + c.down - c.payload),
    c === base ? 'baseline' : fmtRatio(ratio(c.up + c.down, base.up + base.down)),
    fmtInt(c.setupUp + c.setupDown),
  ]);
  const tcp = counts[0] as Count;
  return {
    id: 'wire-bytes',
    title: 'Bytes on the wire: one signaling exchange (offer, candidates, answer, bye)',
    columns: ['transport', 'up', 'down', 'total', 'messages', 'JSON payload', 'framing + acks', 'ratio', 'connection setup (once)'],
    rows,
    notes: [
      'Bytes above TCP on the camera\'s socket (no IP/TCP headers). The camera trickles no candidates beyond end-of-candidates: werift puts every host candidate in the offer SDP, as the device SDK sends it; the bridge\'s answer carries its candidates too (trickled only over 4 KB).',
      'MQTT carries each message as a QoS 1 PUBLISH (topic name, packet ID) plus a 4-byte PUBACK; MQTT/WebSocket adds WebSocket frame headers (masked from the camera). The plain WebSocket server has no topics and no acknowledgements.',
      'Connection setup: MQTT CONNECT with credentials and a will (the offline card), SUBSCRIBE to two filters, the online status card, the retained bridge card; for WebSocket transports also the HTTP upgrade. Paid once per connection.',
    ],
    bottleneck: `The SDP: ${fmtInt(tcp.payload)} of the ${fmtInt(tcp.up + tcp.down)} bytes over MQTT/TCP are the JSON messages, almost all of it the offer and answer SDP; MQTT's topics, packet IDs and acknowledgements add ${fmtInt(tcp.up + tcp.down - tcp.payload)} bytes (${((100 * (tcp.up + tcp.down - tcp.payload)) / (tcp.up + tcp.down)).toFixed(1)} %).`,
    data: counts,
  };
}
