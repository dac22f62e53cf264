/**
 * The broker layer on a real Redis: two Aedes nodes in this process, each with its own TCP listener, sharing one
 * redis-server. Cross-node delivery and retained cards, the owner rule for cameras' `up` topics, CONNACK 3 while Redis
 * is away, QoS 1 publishes never acknowledged unless routed, recovery by itself, and the will sweep.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import { Broker } from '../../src/broker/broker.ts';
import { RedisBackend } from '../../src/broker/cluster.ts';
import { connectInProcess } from '../../src/broker/in-process.ts';
import { TcpListener } from '../../src/broker/tcp.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { Topics } from '../../src/protocol/topics.ts';
import { AccessPolicy } from '../../src/security/access.ts';
import type { Identity } from '../../src/security/identity.ts';
import { describeWith, startRedis, type Service } from '../helpers/services.ts';
import { eventually, Inbox, until, withTimeout } from '../helpers/wait.ts';

const topics = new Topics('tali');
const log = pino({ level: 'silent' });

interface Node {
  broker: Broker;
  backend: RedisBackend;
  tcp: TcpListener;
  url: string;
  close(): Promise<void>;
}

async function startNode(id: string, redisUrl: string, holdMs = 10_000): Promise<Node> {
  const backend = new RedisBackend({ url: redisUrl, logger: log, heartbeatIntervalMs: 500 });
  const broker = await Broker.create({
    id,
    // user name "viewer-…" is a viewer, anything else a device named by its user name
    authenticate: async ({ username }) => (username?.startsWith('viewer-') ? { role: 'viewer', id: username } : { role: 'device', id: username ?? '' }) as Identity,
    access: new AccessPolicy(topics),
    topics,
    logger: log,
    shared: backend.shared,
  });
  backend.attach(broker, { holdMs, localOnly: (t) => topics.parse(t)?.channel === 'up' && topics.parse(t)?.kind === 'device' });
  expect(await backend.whenAvailable(5000)).toBe(true);
  const tcp = new TcpListener(broker, {});
  const port = await tcp.listen('127.0.0.1', 0);
  return {
    broker,
    backend,
    tcp,
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await tcp.close(100);
      await broker.close();
      await backend.close();
    },
  };
}

function device(node: Node, id: string): Promise<MqttClient> {
  return connectMqtt({ target: node.url, clientId: id, username: id, password: 'x' });
}

describeWith(['redis-server'], 'broker cluster on a real Redis', () => {
  let redis: Service;
  let a: Node;
  let b: Node;
  const clients: MqttClient[] = [];
  const track = <T extends MqttClient>(c: T) => (clients.push(c), c);

  beforeAll(async () => {
    redis = await startRedis();
    a = await startNode('node-a', redis.url);
    b = await startNode('node-b', redis.url);
  });
  afterAll(async () => {
    for (const c of clients) c.end(true);
    await a?.close();
    await b?.close();
    await redis?.close();
  });

  it('delivers across nodes and keeps retained cards for subscribers of either node', async () => {
    const cam = track(await device(a, 'cam-x'));
    await cam.publishAsync(topics.device('cam-x', 'status'), '{"state":"online"}', { qos: 1, retain: true });
    const viewer = track(await connectMqtt({ target: b.url, clientId: 'viewer-1-a', username: 'viewer-1', password: 'x' }));
    const inbox = new Inbox(viewer);
    await viewer.subscribeAsync(topics.allDevices('status'), { qos: 1 });
    expect(await inbox.next((j, t) => t === topics.device('cam-x', 'status') && j.state === 'online')).toBeDefined();
    await cam.publishAsync(topics.device('cam-x', 'status'), '{"state":"offline"}', { qos: 1, retain: true });
    expect(await inbox.next((j) => j.state === 'offline')).toBeDefined();
  });

  it("gives a camera's up messages only to the internal clients of the node the camera is connected to", async () => {
    const internal = (node: Node, name: string) =>
      connectMqtt({ target: () => connectInProcess(node.broker), clientId: name });
    const bridgeA = track(await internal(a, 'tali-a'));
    const bridgeB = track(await internal(b, 'tali-b'));
    const inA = new Inbox(bridgeA);
    const inB = new Inbox(bridgeB);
    await bridgeA.subscribeAsync([topics.allDevices('up'), topics.allDevices('status')], { qos: 1 });
    await bridgeB.subscribeAsync([topics.allDevices('up'), topics.allDevices('status')], { qos: 1 });
    const camOnA = track(await device(a, 'cam-a'));
    const camOnB = track(await device(b, 'cam-b'));
    await camOnA.publishAsync(topics.device('cam-a', 'up'), '{"n":1}', { qos: 1 });
    await camOnB.publishAsync(topics.device('cam-b', 'up'), '{"n":2}', { qos: 1 });
    await camOnA.publishAsync(topics.device('cam-a', 'status'), '{"state":"online"}', { qos: 1, retain: true });
    expect(await inA.next((j, t) => t === topics.device('cam-a', 'up'))).toEqual({ n: 1 });
    expect(await inB.next((j, t) => t === topics.device('cam-b', 'up'))).toEqual({ n: 2 });
    // status cards are for everyone
    expect(await inB.next((j, t) => t === topics.device('cam-a', 'status'))).toEqual({ state: 'online' });
    expect(inA.messages.some((m) => m.topic === topics.device('cam-b', 'up'))).toBe(false);
    expect(inB.messages.some((m) => m.topic === topics.device('cam-a', 'up'))).toBe(false);
    expect(a.backend.isLocal('cam-a')).toBe(true);
    expect(b.backend.isLocal('cam-a')).toBe(false);
  });

  it("a camera that reconnects to another node while its old connection is still open is not marked offline by it", async () => {
    const will = { topic: topics.device('cam-t', 'status'), payload: Buffer.from('{"state":"offline"}'), qos: 1 as const, retain: true };
    const old = track(await connectMqtt({ target: a.url, clientId: 'cam-t', username: 'cam-t', password: 'x', will }));
    await old.publishAsync(will.topic, '{"state":"online","n":1}', { qos: 1, retain: true });
    const spy = track(await connectMqtt({ target: b.url, clientId: 'viewer-4-a', username: 'viewer-4', password: 'x' }));
    const seen = new Inbox(spy);
    await spy.subscribeAsync(will.topic, { qos: 1 });
    const oldClosed = new Promise<void>((resolve) => old.once('close', () => resolve()));
    const moved = track(await connectMqtt({ target: b.url, clientId: 'cam-t', username: 'cam-t', password: 'x', will }));
    await moved.publishAsync(will.topic, '{"state":"online","n":2}', { qos: 1, retain: true });
    await withTimeout(oldClosed, 5000, 'node A to close the old connection (takeover)');
    await until(() => !a.backend.isLocal('cam-t'), 5000, 'node A to forget the old connection');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const viewer = track(await connectMqtt({ target: a.url, clientId: 'viewer-3-a', username: 'viewer-3', password: 'x' }));
    const inbox = new Inbox(viewer);
    await viewer.subscribeAsync(will.topic, { qos: 1 });
    expect(await inbox.next(() => true)).toEqual({ state: 'online', n: 2 });
    expect(seen.messages.map((m) => m.json)).toEqual([{ state: 'online', n: 1 }, { state: 'online', n: 2 }]);
  });

  it("finding 9: a will outside its client's topics is refused at CONNECT on every node, and a dead node's such will is never published", async () => {
    const forged = { topic: topics.device('cam-v', 'status'), payload: Buffer.from('{"state":"offline","forged":true}'), qos: 1 as const, retain: true };
    for (const node of [a, b]) {
      const refused = await connectMqtt({ target: node.url, clientId: 'cam-w', username: 'cam-w', password: 'x', will: forged }).then(
        (c) => (c.end(true), undefined),
        (err: Error & { code?: number }) => err,
      );
      expect(refused?.code, node.broker.aedes.id).toBe(5);
    }
    const victim = track(await device(a, 'cam-v'));
    await victim.publishAsync(forged.topic, '{"state":"online"}', { qos: 1, retain: true });
    const watcher = track(await connectMqtt({ target: b.url, clientId: 'viewer-9-a', username: 'viewer-9', password: 'x' }));
    const seen = new Inbox(watcher);
    await watcher.subscribeAsync(topics.allDevices('status'), { qos: 1 });
    await seen.next((j) => j.state === 'online');

    // A will stored by a node that did not check it (an older version), then the node dies: the survivors must not
    // publish it. Its own camera's will, in its own topics, is published as usual.
    const dead = await startNode('node-dead', redis.url);
    const wills = (dead.broker.aedes as unknown as { persistence: unknown }).persistence as { putWill(client: { id: string }, packet: object): Promise<void> };
    await wills.putWill({ id: 'cam-w' }, { cmd: 'publish', ...forged });
    await wills.putWill({ id: 'cam-d' }, { cmd: 'publish', topic: topics.device('cam-d', 'status'), payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: true });
    await dead.backend.close();
    await dead.tcp.close(0);
    expect(await seen.next((j, t) => t === topics.device('cam-d', 'status'), 15_000, "the dead node's camera will")).toEqual({ state: 'offline' });
    // Published or not, the sweep deletes a will it has handled; the sentinel then comes after anything it published.
    const stored = a.backend.persistence as { streamWill(brokers?: object): AsyncIterable<{ clientId: string }> };
    await eventually(async () => {
      for await (const will of stored.streamWill({})) if (will.clientId === 'cam-w') return false;
      return true;
    }, 10_000, 'the forged will to be handled');
    await victim.publishAsync(forged.topic, '{"state":"online","n":"sentinel"}', { qos: 1, retain: true });
    await seen.next((j) => j.n === 'sentinel');
    expect(seen.messages.filter((m) => m.json?.forged)).toEqual([]);
    await dead.broker.close();
  });

  it('refuses CONNECT with 3 while Redis is away, holds a QoS 1 publish and delivers it once Redis is back', async () => {
    const cam = track(await device(a, 'cam-r'));
    const watcher = track(await connectMqtt({ target: b.url, clientId: 'viewer-2-a', username: 'viewer-2', password: 'x' }));
    const inbox = new Inbox(watcher);
    await watcher.subscribeAsync(topics.allDevices('status'), { qos: 1 });

    await redis.stop();
    await until(() => a.backend.problem !== undefined, 5000, 'node A to notice Redis is gone');
    const refused = await connectMqtt({ target: a.url, clientId: 'cam-late', username: 'cam-late', password: 'x' }).then(
      () => undefined,
      (err: Error & { code?: number }) => err,
    );
    expect(refused?.code).toBe(3);

    const t0 = performance.now();
    let acked = false;
    const published = cam.publishAsync(topics.device('cam-r', 'status'), '{"state":"online","n":"held"}', { qos: 1, retain: true }).then(() => (acked = true));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(acked).toBe(false); // no PUBACK for what could not be handed on
    await redis.start();
    await withTimeout(published, 15_000, 'the held PUBACK');
    const recoveredMs = performance.now() - t0;
    expect(await inbox.next((j) => j.n === 'held', 8000, 'the held message on the other node')).toBeDefined();
    expect(a.backend.problem).toBeUndefined();
    expect(recoveredMs).toBeLessThan(15_000);
  });
});
