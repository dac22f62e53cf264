/**
 * The broker's device connection events on $SYS (src/broker/connection-events.ts): what a device's CONNECT said and
 * how its connection ended, readable by admins only, in order with the device's own messages and its will.
 */
import type { MqttClient } from 'mqtt';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { PROTOCOL_VERSION, Topics } from '../../src/protocol/topics.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { Inbox } from '../helpers/wait.ts';

const EVENTS = '$SYS/+/tali/device/+/+';

async function admin(tb: TestBridge): Promise<{ client: MqttClient; inbox: Inbox }> {
  const secret = await tb.bridge.credentials.add('ops', 'admin', { replace: true });
  const client = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops:events', username: 'ops', password: secret });
  onTestFinished(() => client.endAsync(true));
  const inbox = new Inbox(client);
  const t = new Topics(tb.bridge.config.root);
  await client.subscribeAsync([EVENTS, t.allDevices('status')], { qos: 1 });
  return { client, inbox };
}

async function device(tb: TestBridge, id: string, keepaliveS = 20): Promise<MqttClient> {
  const secret = await tb.bridge.credentials.add(id, 'device', { replace: true });
  const t = new Topics(tb.bridge.config.root);
  const offline = JSON.stringify({ v: PROTOCOL_VERSION, type: 'status', ts: Date.now(), state: 'offline' });
  const client = await connectMqtt({
    target: tb.bridge.mqttUrl,
    clientId: id,
    username: id,
    password: secret,
    keepaliveS,
    will: { topic: t.device(id, 'status'), payload: Buffer.from(offline), qos: 1, retain: true },
  });
  onTestFinished(() => client.endAsync(true));
  return client;
}

describe('device connection events on $SYS', () => {
  it("tell admins a device's keep alive, clean session and will, and that a DISCONNECT ended it (no will)", async () => {
    const tb = await startBridge();
    const { inbox } = await admin(tb);
    const cam = await device(tb, 'cam1', 20);
    const connected = await inbox.next((m, topic) => topic.endsWith('/tali/device/cam1/connected'), 5000, 'connected');
    expect(connected).toMatchObject({ clientId: 'cam1', keepalive: 20, clean: true, will: { topic: 'tali/v1/device/cam1/status', qos: 1, retain: true } });
    expect(JSON.parse((connected.will as { payload: string }).payload)).toMatchObject({ type: 'status', state: 'offline' });
    await cam.endAsync();
    const gone = await inbox.next((m, topic) => topic.endsWith('/tali/device/cam1/disconnected'), 5000, 'disconnected');
    expect(gone).toMatchObject({ clientId: 'cam1', reason: 'disconnect', willPublished: false });
    expect(inbox.messages.filter((m) => m.topic.endsWith('/status'))).toEqual([]);
  });

  it('a lost connection says "lost" and publishes the will; the bridge closing one says "closed-by-bridge"', async () => {
    const tb = await startBridge();
    const { inbox } = await admin(tb);
    const cam = await device(tb, 'cam2');
    await inbox.next((m, topic) => topic.endsWith('/cam2/connected'), 5000, 'connected');
    cam.stream.destroy();
    expect(await inbox.next((m, topic) => topic.endsWith('/cam2/disconnected'), 5000, 'disconnected')).toMatchObject({ reason: 'lost', willPublished: true });
    expect(await inbox.next((m, topic) => topic === 'tali/v1/device/cam2/status', 5000, 'the will')).toMatchObject({ state: 'offline' });

    const cam3 = await device(tb, 'cam3');
    await inbox.next((m, topic) => topic.endsWith('/cam3/connected'), 5000, 'connected');
    expect(tb.bridge.broker.disconnectWhere((identity) => identity.id === 'cam3', 'test')).toBe(1);
    expect(await inbox.next((m, topic) => topic.endsWith('/cam3/disconnected'), 5000, 'disconnected')).toMatchObject({ reason: 'closed-by-bridge', willPublished: true });
    // A publish the access rules deny closes the connection (MQTT 3.1.1 has no negative PUBACK): the bridge closed it.
    const cam4 = await device(tb, 'cam4');
    await inbox.next((m, topic) => topic.endsWith('/cam4/connected'), 5000, 'connected');
    cam4.publish('tali/v1/device/cam3/up', '{}', { qos: 1 });
    expect(await inbox.next((m, topic) => topic.endsWith('/cam4/disconnected'), 5000, 'disconnected')).toMatchObject({ reason: 'closed-by-bridge' });
  });

  it('"connected" comes before anything the device sends, Aedes\' new/subscribes before what it sends after SUBACK', async () => {
    const tb = await startBridge();
    const { client } = await admin(tb);
    await client.subscribeAsync('$SYS/+/new/subscribes', { qos: 1 });
    const seen: string[] = [];
    client.on('message', (topic, payload) => {
      if (topic.endsWith('/new/subscribes') && !payload.toString().includes('"cam5"')) return;
      if (topic.includes('cam5') || topic.endsWith('/new/subscribes')) seen.push(topic.split('/').slice(-2).join('/'));
    });
    const cam = await device(tb, 'cam5');
    await cam.subscribeAsync('tali/v1/device/cam5/down', { qos: 1 });
    await cam.publishAsync('tali/v1/device/cam5/status', JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state: 'online' }), { qos: 1, retain: true });
    await new Promise<void>((resolve) => client.on('message', (topic) => topic === 'tali/v1/device/cam5/status' && resolve()));
    expect(seen).toEqual(['cam5/connected', 'new/subscribes', 'cam5/status']);
  });

  it('viewers may not read them, and viewers and admins produce none', async () => {
    const tb = await startBridge();
    const { inbox } = await admin(tb);
    const secret = await tb.bridge.credentials.add('alice', 'viewer', { replace: true });
    const viewer = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'alice:x1', username: 'alice', password: secret });
    onTestFinished(() => viewer.endAsync(true));
    // SUBACK 0x80: mqtt.js rejects the subscription.
    await expect(viewer.subscribeAsync(EVENTS, { qos: 1 })).rejects.toThrow();
    await viewer.endAsync();
    const cam = await device(tb, 'cam5');
    await inbox.next((m, topic) => topic.endsWith('/cam5/connected'), 5000, 'connected');
    await cam.endAsync();
    await inbox.next((m, topic) => topic.endsWith('/cam5/disconnected'), 5000, 'disconnected');
    expect(inbox.messages.filter((m) => m.topic.includes('alice') || m.topic.includes('/ops'))).toEqual([]);
  });
});
