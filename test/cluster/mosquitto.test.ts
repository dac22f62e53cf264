/**
 * External-broker mode on a real Mosquitto (Debian's package) with the acl_file and password lines tali generates:
 * `tali answer` (Bridge with `broker`) answers a simulated camera and serves a viewer through Mosquitto, and the
 * same per-device isolation holds there: a device's subscription to another device's down topic is refused. The
 * bridge's /mqtt WebSocket is piped to Mosquitto, so the dashboard it serves works there too.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { Bridge } from '../../src/bridge.ts';
import { runMosquitto } from '../../src/cli/mosquitto.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { Topics } from '../../src/protocol/topics.ts';
import { CredentialStore } from '../../src/security/credentials.ts';
import { mosquittoPasswordLine } from '../../src/security/mosquitto.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { ViewerClient } from '../../src/viewer/viewer-client.ts';
import { WeriftViewerPeer } from '../../src/webrtc/werift-viewer-peer.ts';
import type { MqttClient } from 'mqtt';
import { captureLogger } from '../helpers/bridge.ts';
import { describeWith, findBinary, startMosquitto, type Service } from '../helpers/services.ts';
import { Inbox, until } from '../helpers/wait.ts';
import { FAST_BACKOFF, next } from '../devices/helpers.ts';
import { spawnSync } from 'node:child_process';

const topics = new Topics('tali');

async function cli(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const input = new PassThrough();
  input.end(stdin);
  const code = await runMosquitto(argv, {
    stdout: { write: (t: string) => ((out += t), true) } as unknown as NodeJS.WritableStream,
    stderr: { write: (t: string) => ((err += t), true) } as unknown as NodeJS.WritableStream,
    stdin: input,
  });
  return { code, out, err };
}

describeWith(['mosquitto'], 'tali answer on a real Mosquitto', () => {
  let dataDir: string;
  let mosquitto: Service;
  let bridge: Bridge;
  const secrets: Record<string, string> = {};
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'tali-mosq-'));
    const store = new CredentialStore(dataDir);
    secrets.cam1 = await store.add('cam1', 'device');
    secrets.cam2 = await store.add('cam2', 'device');
    secrets.alice = await store.add('alice', 'viewer');
    secrets['tali-bridge'] = 'bridge-secret-for-tests';
    const acl = await cli(['acl', '--data-dir', dataDir, '--bridge-user', 'tali-bridge']);
    expect(acl.code).toBe(0);
    const lines: string[] = [];
    for (const [user, secret] of Object.entries(secrets)) {
      const line = await cli(['passwd', user], `${secret}\n`);
      expect(line.code, line.err).toBe(0);
      lines.push(line.out.trim());
    }
    mosquitto = await startMosquitto({ acl: acl.out, passwords: `${lines.join('\n')}\n` });
    bridge = await Bridge.start({
      config: {
        host: '127.0.0.1',
        httpPort: 0,
        dataDir,
        bridgeId: 'bridge-m',
        broker: mosquitto.url,
        brokerUsername: 'tali-bridge',
        brokerPassword: secrets['tali-bridge'],
      },
      logger: captureLogger(logs),
    });
  });
  afterAll(async () => {
    await bridge?.close();
    await mosquitto?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('writes password lines that mosquitto_passwd would accept as its own format', async () => {
    const line = await mosquittoPasswordLine('cam9', 'secret123', Buffer.from('Xsz0g64b63qcYS7H', 'base64'));
    // The same salt through Debian's mosquitto_passwd gives the same line.
    expect(line).toBe('cam9:$7$101$Xsz0g64b63qcYS7H$9FtAiNKSpOcEMnYLppDV8u6tuLJhhbYHhSAVf0xZOMsuIoE1BkSHdKH8lsNoQfitj6fMBMUT3FrUB8ZSzggPCA==');
    const passwd = findBinary('mosquitto_passwd');
    if (passwd) {
      const dir = await mkdtemp(join(tmpdir(), 'tali-pw-'));
      const made = spawnSync(passwd, ['-c', '-b', join(dir, 'pw'), 'cam9', 'secret123']);
      expect(made.status).toBe(0);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers a camera and serves a viewer through Mosquitto', async () => {
    expect(bridge.embedded).toBeUndefined();
    const camera = new SimulatedCamera({ deviceId: 'cam1', secret: secrets.cam1!, connect: nodeConnector(mosquitto.url), backoff: FAST_BACKOFF });
    try {
      await camera.start();
      await next(camera.keeper, 'session-connected', () => true, 15_000);
      expect(camera.keeper.counters.connected).toBe(1);
      const viewer = new NodeViewer({ url: mosquitto.url, user: 'alice', password: secrets.alice!, deviceId: 'cam1' });
      try {
        await viewer.start();
        await until(() => viewer.summary().keyframes > 0 && viewer.summary().packets >= 30, 20_000, 'video through Mosquitto');
        expect(viewer.summary().stream).toBe('live');
      } finally {
        await viewer.stop();
      }
    } finally {
      await camera.stop();
    }
  });

  it('pipes MQTT over WebSocket at /mqtt to Mosquitto, for the dashboard: a viewer sees cards and watches through it', async () => {
    // Mosquitto here has no WebSocket listener; the browser's MQTT goes to the bridge's own origin.
    expect(bridge.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/mqtt$/);
    const camera = new SimulatedCamera({ deviceId: 'cam2', secret: secrets.cam2!, connect: nodeConnector(mosquitto.url), backoff: FAST_BACKOFF });
    onTestFinished(() => camera.stop());
    await camera.start();
    await next(camera.keeper, 'session-connected', () => true, 15_000);
    const cards = await connectMqtt({ target: bridge.wsUrl, clientId: 'alice-cards', username: 'alice', password: secrets.alice! });
    onTestFinished(() => cards.endAsync(true));
    const seen = new Inbox(cards);
    await cards.subscribeAsync(topics.allDevices('status'), { qos: 1 });
    expect(await seen.next((j, t) => t === topics.device('cam2', 'status'))).toMatchObject({ state: 'online' });
    const viewer = new NodeViewer({ url: bridge.wsUrl, user: 'alice', password: secrets.alice!, deviceId: 'cam2' });
    onTestFinished(() => viewer.stop());
    await viewer.start();
    await until(() => viewer.summary().keyframes > 0 && viewer.summary().packets >= 30, 20_000, 'video through the pipe');
    // Mosquitto authenticates through the pipe as it would directly.
    const refused = await connectMqtt({ target: bridge.wsUrl, clientId: 'alice-bad', username: 'alice', password: 'wrong' }).then(
      () => undefined,
      (err: Error & { code?: number }) => err.code,
    );
    expect(refused).toBe(5);
  });

  it("a viewer connection's sessions end with it on Mosquitto too (the SDK's will), and stay its own", async () => {
    const camera = new SimulatedCamera({ deviceId: 'cam1', secret: secrets.cam1!, connect: nodeConnector(mosquitto.url), backoff: FAST_BACKOFF });
    onTestFinished(() => camera.stop());
    await camera.start();
    await next(camera.keeper, 'session-connected', () => true, 15_000);
    const connect = nodeConnector(mosquitto.url);
    const clients: MqttClient[] = [];
    const client = new ViewerClient({ user: 'alice', password: secrets.alice!, backoff: { initialMs: 60_000, maxMs: 60_000 }, connect: (o) => {
      const c = connect(o);
      clients.push(c);
      return c;
    } });
    onTestFinished(() => client.stop());
    await client.start();
    const watch = client.watch('cam1', (iceServers) => new WeriftViewerPeer({ iceServers }));
    await next(watch, 'state', (state) => state === 'connected', 20_000);
    const session = bridge.relay.viewers.get(`alice/${watch.sessionId}`)!;
    // The user's other connection (the ACL gives a user all its connections' topics on Mosquitto) sees nothing of it.
    const other = await connectMqtt({ target: mosquitto.url, clientId: 'alice-other', username: 'alice', password: secrets.alice! });
    onTestFinished(() => other.endAsync(true));
    const seen = new Inbox(other);
    await other.subscribeAsync(topics.viewer('alice', 'alice-other', 'down'), { qos: 1 });
    clients[0]!.stream.destroy(); // an unclean end: Mosquitto publishes the will, `leave` on that connection's up topic
    await until(() => session.state === 'closed', 10_000, 'the session to end with its connection');
    expect(seen.messages).toEqual([]);
  });

  it("holds the pipe to the client limits: one address over maxConnectionsPerAddress is closed, and logged", async () => {
    const limited: Record<string, unknown>[] = [];
    const small = await Bridge.start({
      config: { host: '127.0.0.1', httpPort: 0, dataDir, bridgeId: 'bridge-small', broker: mosquitto.url, brokerUsername: 'tali-bridge', brokerPassword: secrets['tali-bridge'], maxConnectionsPerAddress: 1 },
      logger: captureLogger(limited),
    });
    onTestFinished(() => small.close());
    const first = await connectMqtt({ target: small.wsUrl, clientId: 'alice-1', username: 'alice', password: secrets.alice! });
    onTestFinished(() => first.endAsync(true));
    await expect(connectMqtt({ target: small.wsUrl, clientId: 'alice-2', username: 'alice', password: secrets.alice! })).rejects.toThrow();
    expect(limited.some((l) => l.event === 'limit' && l.limit === 'maxConnectionsPerAddress')).toBe(true);
    expect(first.connected).toBe(true);
  });

  it("never delivers another device's down topic, nor other devices' cards, to a device", async () => {
    // Mosquitto 2.0's acl_file grants every SUBSCRIBE (SUBACK 1, where the embedded broker says 0x80) and checks
    // `read` access on each delivery instead: the subscription exists, nothing ever arrives through it.
    const cam1 = await connectMqtt({ target: mosquitto.url, clientId: 'cam1', username: 'cam1', password: secrets.cam1! });
    const cam2 = await connectMqtt({ target: mosquitto.url, clientId: 'cam2', username: 'cam2', password: secrets.cam2! });
    try {
      const got1 = new Inbox(cam1);
      const got2 = new Inbox(cam2);
      await cam1.subscribeAsync(topics.device('cam1', 'down'), { qos: 1 });
      const granted = await cam2.subscribeAsync([topics.device('cam1', 'down'), topics.allDevices('status'), topics.device('cam2', 'down')], { qos: 1 });
      expect(granted.map((g) => g.qos)).toEqual([1, 1, 1]);
      await cam1.publishAsync(topics.device('cam1', 'status'), '{"v":1,"type":"status","ts":1,"state":"online"}', { qos: 1, retain: true });
      // the bridge (its user may write anywhere) sends cam1 a start, then cam2 one: cam2 must only see its own
      bridge.relay.requestStart('cam1');
      bridge.relay.requestStart('cam2');
      await got1.next((j, t) => t === topics.device('cam1', 'down') && j.type === 'start');
      await got2.next((j, t) => t === topics.device('cam2', 'down') && j.type === 'start');
      expect(got2.messages.map((m) => m.topic)).toEqual([]); // not cam1's start, not cam1's card
      expect(cam2.connected).toBe(true);
      // a device may not write another device's topics either: dropped by Mosquitto (it does not disconnect)
      await cam2.publishAsync(topics.device('cam1', 'up'), '{"forged":true}', { qos: 1 });
      await cam2.publishAsync(topics.device('cam2', 'status'), '{"v":1,"type":"status","ts":1,"state":"online"}', { qos: 1, retain: true });
      const watcher = await connectMqtt({ target: mosquitto.url, clientId: 'alice-w', username: 'alice', password: secrets.alice! });
      const seen = new Inbox(watcher);
      await watcher.subscribeAsync(topics.allDevices('status'), { qos: 1 });
      await seen.next((j, t) => t === topics.device('cam2', 'status'));
      expect(logs.some((l) => l.event === 'rejected' && JSON.stringify(l).includes('forged'))).toBe(false);
      await watcher.endAsync(true);
    } finally {
      await cam1.endAsync(true);
      await cam2.endAsync(true);
    }
  });

  it('refuses a wrong password (CONNACK 5 from Mosquitto)', async () => {
    const refused = await connectMqtt({ target: mosquitto.url, clientId: 'cam1', username: 'cam1', password: 'wrong' }).then(
      () => undefined,
      (err: Error & { code?: number }) => err.code,
    );
    expect(refused).toBe(5);
  });
});
