/**
 * tali nodes on one real Redis (Debian's redis-server on a loopback port):
 * - a camera on node A and a viewer on node B: B's viewer sees A's camera and watches it, A alone answers;
 * - node A (a real `tali start --cluster` process) killed mid-stream: the camera reconnects to B (a URL list stands
 *   in for the load balancer) and renegotiates, the viewer watches again without a new client, A's card goes
 *   offline, and the camera stays marked online;
 * - Redis stopped and restarted mid-negotiation: the offer is held, not acknowledged, then answered; a longer outage
 *   refuses connections with CONNACK 3, /readyz says why, and the camera's re-offer is answered once Redis is back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { Bridge } from '../../src/bridge.ts';
import type { MqttConnector } from '../../src/client/mqtt-link.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import type { OptionName } from '../../src/config/options.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { captureLogger, type TestBridge } from '../helpers/bridge.ts';
import { createOfferer } from '../helpers/offerer.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { describeWith, freePort, startRedis, type Service } from '../helpers/services.ts';
import { until, withTimeout } from '../helpers/wait.ts';
import { FAST_BACKOFF, next } from '../devices/helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HEARTBEAT_MS = 500;

interface Node extends TestBridge {
  logs: Record<string, unknown>[];
}

async function startNode(redis: Service, dataDir: string, bridgeId: string, extra: Partial<Record<OptionName, unknown>> = {}): Promise<Node> {
  const logs: Record<string, unknown>[] = [];
  const bridge = await Bridge.start({
    config: { host: '127.0.0.1', mqttPort: 0, httpPort: 0, dataDir, bridgeId, cluster: redis.url, clusterHeartbeatMs: HEARTBEAT_MS, ...extra },
    logger: captureLogger(logs),
  });
  onTestFinished(() => bridge.close());
  return { bridge, dataDir, logs, urlFor: (t) => (t === 'mqtt' ? bridge.mqttUrl : bridge.wsUrl) };
}

/** `tali start --cluster` as its own process, so that it can be killed; resolves once it logged "tali ready". */
async function startNodeProcess(redis: Service, dataDir: string, bridgeId: string): Promise<{ child: ChildProcess; mqttUrl: string; output: string[] }> {
  const mqttPort = await freePort();
  const args = ['bin/tali.js', 'start', '--cluster', redis.url, '--bridge-id', bridgeId, '--host', '127.0.0.1', '--mqtt-port', String(mqttPort)];
  args.push('--http-port', '0', '--data-dir', dataDir, '--cluster-heartbeat-ms', String(HEARTBEAT_MS), '--log-level', 'info');
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const output: string[] = [];
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (chunk: Buffer) => {
        output.push(...chunk.toString().split('\n').filter((l) => l));
        if (output.some((l) => l.includes('"tali ready"'))) resolve();
      });
      child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      child.once('exit', (code) => reject(new Error(`node ${bridgeId} exited ${code}:\n${output.join('\n')}`)));
    }),
    20_000,
    `node ${bridgeId} to start`,
  );
  return { child, mqttUrl: `mqtt://127.0.0.1:${mqttPort}`, output };
}

/** Stands in for a load balancer: each new connection goes to the next URL of the list. */
function roundRobin(urls: string[]): MqttConnector & { targets: string[] } {
  const connectors = urls.map((url) => nodeConnector(url, { connectTimeoutMs: 10_000 }));
  const targets: string[] = [];
  const connector = (options: Parameters<MqttConnector>[0]) => {
    const i = targets.length % urls.length;
    targets.push(urls[i]!);
    return connectors[i]!(options);
  };
  return Object.assign(connector, { targets });
}

async function readyz(bridge: Bridge): Promise<{ status: number; body: { ready: boolean; reason?: string } }> {
  const res = await fetch(`http://127.0.0.1:${bridge.httpPort}/readyz`);
  return { status: res.status, body: (await res.json()) as { ready: boolean; reason?: string } };
}

describeWith(['redis-server'], 'tali nodes on one Redis', () => {
  let redis: Service;
  let dataDir: string;

  beforeAll(async () => {
    redis = await startRedis();
    dataDir = await mkdtemp(join(tmpdir(), 'tali-cluster-'));
  });
  afterAll(async () => {
    await redis?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("serves a viewer on node B with the camera of node A; only A answers the camera's offers", async () => {
    const a = await startNode(redis, dataDir, 'node-a');
    const b = await startNode(redis, dataDir, 'node-b');
    const secret = await a.bridge.credentials.add('cam1', 'device', { replace: true });
    const password = await a.bridge.credentials.add('alice', 'viewer', { replace: true });
    const sessions = { a: 0, b: 0 };
    a.bridge.answerer.on('session', () => sessions.a++);
    b.bridge.answerer.on('session', () => sessions.b++);

    const camera = new SimulatedCamera({ deviceId: 'cam1', secret, connect: nodeConnector(a.bridge.mqttUrl), backoff: FAST_BACKOFF });
    onTestFinished(() => camera.stop());
    await camera.start();
    await next(camera.keeper, 'session-connected', () => true, 15_000);

    const viewer = new NodeViewer({ url: b.bridge.mqttUrl, user: 'alice', password, deviceId: 'cam1', backoff: FAST_BACKOFF });
    onTestFinished(() => viewer.stop());
    await viewer.start();
    await until(() => viewer.client.devices.get('cam1')?.status?.state === 'online', 5000, "B's viewer to see A's camera online");
    await until(() => viewer.summary().keyframes > 0 && viewer.summary().packets >= 30, 20_000, 'video from A to the viewer on B');
    expect(viewer.summary().stream).toBe('live');
    expect(sessions).toEqual({ a: 1, b: 0 });
    expect(a.bridge.relay.viewers.size).toBe(1);
    expect(b.bridge.relay.viewers.size).toBe(0);
    // both nodes' cards are online for everyone
    expect([...viewer.client.bridges.values()].filter((c) => c.state === 'online').map((c) => c.bridgeId).sort()).toEqual(['node-a', 'node-b']);
    // The camera's session belongs to the node that answered (named in the answer): B restarting does not end it.
    expect(camera.keeper.session?.bridgeId).toBe('node-a');
    const oldTs = camera.client.bridges.get('node-b')?.ts;
    await b.bridge.close();
    await startNode(redis, dataDir, 'node-b');
    await until(() => camera.client.bridges.get('node-b')?.state === 'online' && camera.client.bridges.get('node-b')?.ts !== oldTs, 5000, "node B's new card");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(camera.keeper.counters.opened).toBe(1);
    expect(sessions.a).toBe(1);
  });

  it('a node killed mid-stream: its camera renegotiates on the other node and the viewer watches again there', { timeout: 60_000 }, async () => {
    const killed = await startNodeProcess(redis, dataDir, 'node-k');
    const b = await startNode(redis, dataDir, 'node-s');
    const secret = await b.bridge.credentials.add('cam2', 'device', { replace: true });
    const password = await b.bridge.credentials.add('bob', 'viewer', { replace: true });

    const lb = roundRobin([killed.mqttUrl, b.bridge.mqttUrl]);
    const camera = new SimulatedCamera({ deviceId: 'cam2', secret, connect: lb, backoff: FAST_BACKOFF });
    onTestFinished(() => camera.stop());
    await camera.start();
    await next(camera.keeper, 'session-connected', () => true, 15_000);
    expect(lb.targets).toEqual([killed.mqttUrl]);

    // A device on the node to be killed that will not come back: its will must mark it offline.
    const gone = await connectRawDevice({ ...b, urlFor: () => killed.mqttUrl }, 'mqtt', 'cam-gone', { will: true });
    await gone.client.publishAsync(gone.topics.device('cam-gone', 'status'), JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state: 'online' }), { qos: 1, retain: true });

    const viewer = new NodeViewer({ url: b.bridge.mqttUrl, user: 'bob', password, deviceId: 'cam2', backoff: FAST_BACKOFF });
    onTestFinished(() => viewer.stop());
    const watch = await viewer.start();
    await until(() => viewer.client.devices.get('cam-gone')?.status?.state === 'online', 5000, 'the other device online');
    await until(() => viewer.summary().packets >= 30 && viewer.summary().keyframes > 0, 20_000, 'video through the node to be killed');
    const firstSession = watch.sessionId;

    const t0 = performance.now();
    killed.child.kill('SIGKILL');
    const [reconnected] = await Promise.all([
      next(camera.keeper, 'session-connected', () => true, 20_000).then(() => performance.now() - t0),
      until(() => b.bridge.answerer.sessions.has('cam2'), 20_000, 'node B to answer the camera'),
    ]);
    expect(lb.targets.at(-1)).toBe(b.bridge.mqttUrl);
    await until(() => watch.sessionId !== firstSession && viewer.summary().packets >= 30 && viewer.summary().keyframes > 0, 20_000, 'the viewer to watch again on B');
    const viewerBackMs = performance.now() - t0;
    await until(() => viewer.client.bridges.get('node-k')?.state === 'offline', 20_000, "the killed node's card to go offline");
    const cardOfflineMs = performance.now() - t0;
    await until(() => viewer.client.devices.get('cam-gone')?.status?.state === 'offline', 10_000, "the dead node's other device to go offline");
    // The killed node's stale will for the camera is due now: it must not mark the (reconnected) camera offline.
    await new Promise((resolve) => setTimeout(resolve, 10 * HEARTBEAT_MS));
    expect(viewer.client.devices.get('cam2')?.status?.state).toBe('online');
    expect(b.bridge.answerer.sessions.get('cam2')?.state).toBe('streaming');
    expect(b.bridge.relay.viewers.size).toBe(1);
    expect(viewer.summary().stream).toBe('live');
    console.info(JSON.stringify({ failover: { cameraReconnectedMs: Math.round(reconnected), viewerBackMs: Math.round(viewerBackMs), deadCardOfflineMs: Math.round(cardOfflineMs) } }));
  });

  it('Redis stopped mid-negotiation: the offer is held without PUBACK and answered once Redis is back', async () => {
    // A Redis that keeps its data (append-only file), as a deployment runs it.
    const durable = await startRedis({ appendonly: true });
    onTestFinished(() => durable.close());
    const node = await startNode(durable, dataDir, 'node-r', { clusterHoldMs: 8000 });
    const device = await connectRawDevice(node, 'mqtt', 'cam3');
    const offerer = await createOfferer();
    await durable.stop();
    await until(() => node.bridge.embedded?.backend?.available === false, 5000, 'the node to notice Redis is gone');
    const down = await readyz(node.bridge);
    expect(down.status).toBe(503);
    expect(down.body.reason).toContain('cluster backend unavailable');

    const t0 = performance.now();
    let acknowledged = false;
    const sent = device.send(device.message('offer', 'held-offer-0001', 1, { sdp: offerer.sdp })).then(() => (acknowledged = true));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(acknowledged).toBe(false);
    await durable.start();
    await withTimeout(sent, 10_000, 'the PUBACK of the held offer');
    const answer = await device.down.next((m) => m.type === 'answer' && m.sessionId === 'held-offer-0001', 10_000, 'the answer');
    expect(answer.bridgeId).toBe('node-r'); // the node that serves the session
    const recoveredMs = performance.now() - t0 - 1500;
    expect((await readyz(node.bridge)).status).toBe(200);
    expect(node.logs.some((l) => l.event === 'cluster_reset')).toBe(false); // it came back with its data
    console.info(JSON.stringify({ redisOutage: { heldOfferAnsweredMsAfterRestart: Math.round(recoveredMs) } }));
  });

  it('a longer outage: the offer is refused unacknowledged, new connections get CONNACK 3, and both recover after', { timeout: 60_000 }, async () => {
    const node = await startNode(redis, dataDir, 'node-o', { clusterHoldMs: 1000 });
    const device = await connectRawDevice(node, 'mqtt', 'cam4');
    const offerer = await createOfferer();
    const secret = await node.bridge.credentials.add('cam5', 'device', { replace: true });
    await redis.stop();
    await until(() => node.bridge.embedded?.backend?.available === false, 5000, 'the node to notice Redis is gone');

    // A camera starting now is told "server unavailable" (CONNACK 3) at once, and keeps trying with backoff.
    const camera = new SimulatedCamera({ deviceId: 'cam5', secret, connect: nodeConnector(node.bridge.mqttUrl), backoff: FAST_BACKOFF });
    onTestFinished(() => camera.stop());
    const refusals: number[] = [];
    camera.client.on('disconnected', (err) => refusals.push((err as Error & { code?: number } | undefined)?.code ?? 0));
    camera.start().catch(() => {});
    // The offer cannot be handed on within clusterHoldMs: no PUBACK, the connection is closed.
    const message = device.message('offer', 'resent-offer-001', 1, { sdp: offerer.sdp });
    let acknowledged = false;
    void device.send(message).then(() => (acknowledged = true), () => {});
    await new Promise<void>((resolve) => device.client.once('close', () => resolve()));
    expect(acknowledged).toBe(false);
    expect(node.logs.some((l) => l.event === 'unacknowledged' && l.clientId === 'cam4')).toBe(true);
    await until(() => refusals.includes(3), 10_000, 'a CONNACK 3 for the camera');

    const cameraBack = next(camera.keeper, 'session-connected', () => true, 40_000).catch((err: Error) => {
      const events = node.logs.filter((l) => l.event !== undefined || String(l.msg).includes('session')).slice(-30);
      throw new Error(`${err.message}; camera connected ${camera.client.connected}, bridges ${[...camera.client.bridges.keys()]}, counters ${JSON.stringify(camera.keeper.counters)}; node: ${JSON.stringify(events.map((l) => [l.msg, l.event, l.clientId, l.reason]))}`);
    });
    const t0 = performance.now();
    await redis.start();
    await until(() => node.bridge.embedded?.backend?.available === true, 10_000, 'the node to see Redis again');
    const availableMs = performance.now() - t0;
    // What an MQTT client does with an unacknowledged QoS 1 message: send it again on its next connection.
    const again = await connectRawDevice(node, 'mqtt', 'cam4');
    await again.send(message);
    await again.down.next((m) => m.type === 'answer' && m.sessionId === 'resent-offer-001', 10_000, 'the answer to the resent offer');
    const resentAnsweredMs = performance.now() - t0;
    await cameraBack;
    const cameraMs = performance.now() - t0;
    expect((await readyz(node.bridge)).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${node.bridge.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^tali_cluster_unacknowledged_total 1$/m);
    expect(metrics).toMatch(/^tali_cluster_available 1$/m);
    // This Redis keeps nothing on disk: it came back empty, and the node noticed (clients reconnected to restore it).
    expect(node.logs.some((l) => l.event === 'cluster_reset')).toBe(true);
    console.info(JSON.stringify({ redisOutage: { availableMsAfterRestart: Math.round(availableMs), resentOfferAnsweredMsAfterRestart: Math.round(resentAnsweredMs), refusedCameraConnectedMsAfterRestart: Math.round(cameraMs) } }));
  });
});
