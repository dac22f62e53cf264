/**
 * DeviceClient against a real bridge, over MQTT/TCP and MQTT/WebSocket: credentials, status cards, and what it does
 * with the bridge's messages (typed events, duplicates dropped, garbage reported).
 */
import type { MqttClient } from 'mqtt';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConnectRefusedError } from '../../src/client/mqtt-link.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { encode, PROTOCOL_VERSION, type Answer } from '../../src/protocol/index.ts';
import { startBridge, TRANSPORTS, type TestBridge, type Transport } from '../helpers/bridge.ts';
import { Inbox } from '../helpers/wait.ts';
import { deviceClient, next, record } from './helpers.ts';

/** An admin client watching cam1's retained status card. */
async function watchStatus(tb: TestBridge, transport: Transport): Promise<Inbox> {
  const secret = await tb.bridge.credentials.add('ops', 'admin');
  const admin: MqttClient = await connectMqtt({ target: tb.urlFor(transport), clientId: 'ops', username: 'ops', password: secret });
  onTestFinished(() => admin.endAsync(true));
  const inbox = new Inbox(admin);
  await admin.subscribeAsync(tb.bridge.topics.device('cam1', 'status'), { qos: 1 });
  return inbox;
}

function publishDown(tb: TestBridge, payload: string): Promise<void> {
  return tb.bridge.broker.publish({ topic: tb.bridge.topics.device('cam1', 'down'), payload, qos: 1, retain: false });
}

describe.each(TRANSPORTS)('device client over %s', (transport) => {
  it('refuses to start with a wrong secret, once, without retrying', async () => {
    const tb = await startBridge();
    await tb.bridge.credentials.add('cam1', 'device');
    const client = await deviceClient(tb, transport, { secret: 'not-the-secret' });
    const retries = record(client, 'reconnecting');

    const failure = await client.start().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConnectRefusedError);
    expect(failure).toMatchObject({ returnCode: 4 });
    expect((failure as Error).message).toContain('bad device ID or secret');
    expect(retries).toHaveLength(0);
    expect(client.connected).toBe(false);
    await client.stop();
  });

  it('publishes its card online at start and offline at stop, and learns the bridge card', async () => {
    const tb = await startBridge();
    const status = await watchStatus(tb, transport);
    const client = await deviceClient(tb, transport, { card: { model: 'test-cam', codecs: { video: ['VP8'] } } });
    const bridgeCard = next(client, 'bridge');

    await client.start();
    const online = await status.next((m) => m.state === 'online', 5000, 'online card');
    expect(online).toMatchObject({ v: 1, type: 'status', model: 'test-cam', codecs: { video: ['VP8'] } });
    const [card] = await bridgeCard;
    expect(card).toMatchObject({ type: 'bridge-status', state: 'online', bridgeId: tb.bridge.config.bridgeId });
    expect(client.onlineBridge).toEqual(card);

    const stopped = client.stop();
    expect(client.stop()).toBe(stopped); // idempotent: the same promise
    await stopped;
    expect(await status.next((m) => m.state === 'offline', 5000, 'offline card')).toMatchObject({ type: 'status', model: 'test-cam' });
    expect(client.connected).toBe(false);
  });

  it('emits typed messages once each and reports undecodable ones', async () => {
    const tb = await startBridge();
    const client = await deviceClient(tb, transport);
    const answers = record(client, 'answer');
    const garbage = next(client, 'protocolError');
    await client.start();

    const answer: Answer = { v: PROTOCOL_VERSION, type: 'answer', sessionId: 'session-1', seq: 1, ts: Date.now(), sdp: 'v=0\r\n' };
    await publishDown(tb, encode(answer));
    await publishDown(tb, encode(answer)); // a QoS 1 redelivery: same (sessionId, seq)
    await publishDown(tb, '{"v":1,"type":"answer"');
    const [error, topic] = await garbage;
    expect(error.code).toBe('TALI_ERR_MALFORMED_JSON');
    expect(topic).toBe(tb.bridge.topics.device('cam1', 'down'));

    const start = next(client, 'start');
    await publishDown(tb, encode({ v: PROTOCOL_VERSION, type: 'start', ts: Date.now(), reason: 'viewer' }));
    expect((await start)[0]).toMatchObject({ type: 'start', reason: 'viewer' });
    // Messages from one publisher arrive in order (MQTT-4.6.0-6): by now the duplicate would have been delivered.
    expect(answers.map((a) => a.args[0])).toEqual([answer]);
  });
});
