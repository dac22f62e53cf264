/**
 * The guard between socket and Aedes passes the stream through faithfully: packets a client sent just before
 * half-closing its socket still reach the broker, so a final DISCONNECT is honoured (no will), while a connection
 * that just drops gets its will published.
 */
import { describe, expect, it } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { connectPacket, DISCONNECT, publishPacket, RawConnection, TYPE } from '../helpers/raw-mqtt.ts';
import { Inbox } from '../helpers/wait.ts';

async function watchCards(tb: TestBridge): Promise<Inbox> {
  const secret = await tb.bridge.credentials.add('ops', 'admin');
  const admin = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops', username: 'ops', password: secret });
  const inbox = new Inbox(admin);
  await admin.subscribeAsync(tb.bridge.topics.allDevices('status'), { qos: 1 });
  return inbox;
}

async function connectWithWill(tb: TestBridge, id: string): Promise<RawConnection> {
  const secret = await tb.bridge.credentials.add(id, 'device');
  const conn = await RawConnection.open(tb.bridge.mqttUrl);
  const will = { topic: tb.bridge.topics.device(id, 'status'), payload: JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state: 'offline' }), qos: 1, retain: true };
  conn.write(connectPacket({ clientId: id, username: id, password: secret, will }));
  expect((await conn.next(TYPE.CONNACK)).body[1]).toBe(0);
  return conn;
}

describe('guard pass-through', () => {
  it('PUBLISH then DISCONNECT then FIN in one write: the publish arrives and no will is published; a dropped connection gets its will', async () => {
    const tb = await startBridge();
    const cards = await watchCards(tb);
    const polite = await connectWithWill(tb, 'polite');
    const online = JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state: 'online' });
    polite.end(Buffer.concat([publishPacket(tb.bridge.topics.device('polite', 'status'), online, { qos: 1, retain: true, id: 3 }), DISCONNECT]));
    await cards.next((m, topic) => topic.includes('/polite/') && m.state === 'online', 5000, "polite's online card");
    const rude = await connectWithWill(tb, 'rude');
    rude.destroy();
    await cards.next((m, topic) => topic.includes('/rude/') && m.state === 'offline', 5000, "rude's will");
    expect(cards.messages.some((m) => m.topic.includes('/polite/') && m.json?.state === 'offline')).toBe(false);
  });
});
