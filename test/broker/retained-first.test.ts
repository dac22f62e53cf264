/**
 * src/broker/retained-first.ts: on a new subscription the retained messages go out before any live message on the
 * topics it covers, so a card published while the retained ones are on their way is the last one the subscriber
 * gets. Aedes alone reads the retained messages ahead (a stream piped into a writable buffer) and sends each after the
 * previous one's write: a card published meanwhile went out live first and the kept, older card after it (a restarted
 * bridge's `offline` card overtaking the device's `online` one).
 */
import type { Client } from 'aedes';
import { PassThrough, type Readable } from 'node:stream';
import { expect, it, onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { encode, PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { startBridge } from '../helpers/bridge.ts';
import { until, withTimeout } from '../helpers/wait.ts';

const CARDS = 20;
const LIVE = 7; // a card well inside what Aedes reads ahead (16 in the stream + 16 in the writable)
const card = (state: 'online' | 'offline', ts: number) => encode({ v: PROTOCOL_VERSION, type: 'status', ts, state });

it('sends the kept cards before a card published while they are being sent', async () => {
  // allowAnonymous: the cards of these unregistered devices are not cleared (src/broker/restored-cards.ts).
  const tb = await startBridge({ allowAnonymous: true });
  const broker = tb.bridge.broker;
  const topic = (i: number) => tb.bridge.topics.device(`cam${i}`, 'status');
  const secret = await tb.bridge.credentials.add('ops', 'admin', { replace: true });
  // Kept cards, as a restarted bridge has them (retained, published by the broker itself).
  for (let i = 0; i < CARDS; i++) await broker.publish({ topic: topic(i), payload: card('offline', 1000 + i), qos: 1, retain: true });

  const client = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops:cards', username: 'ops', password: secret });
  onTestFinished(() => client.endAsync(true));
  const received: { topic: string; payload: string; retain: boolean }[] = [];
  client.on('message', (t, payload, packet) => received.push({ topic: t, payload: payload.toString(), retain: packet.retain }));
  const states = (i: number) =>
    received
      .filter((m) => m.topic === topic(i))
      .map((m) => `${JSON.parse(m.payload).state} ${JSON.parse(m.payload).ts}${m.retain ? ' retained' : ''}`);

  // The device comes back while the subscription's retained cards are on their way: its card is published once Aedes
  // has started reading them (the stream starts on the next tick after SUBACK), as a device's card can be.
  const aedes = broker.aedes as unknown as { on(e: 'subscribe', l: (subs: unknown, c: Client) => void): void };
  let published: Promise<void> | undefined;
  aedes.on('subscribe', (_subs, c) => {
    if (c.id !== 'ops:cards' || published) return;
    published = new Promise((resolve, reject) =>
      setImmediate(() => broker.publish({ topic: topic(LIVE), payload: card('online', 2000), qos: 1, retain: true }).then(resolve, reject)),
    );
  });
  await client.subscribeAsync(tb.bridge.topics.device('+', 'status'), { qos: 1 });
  await until(() => published !== undefined, 5000, 'the live card published');
  await published;
  // A live message on the last kept card's topic: Aedes alone sends it before that card too.
  await broker.publish({ topic: topic(CARDS - 1), payload: card('online', 3000), qos: 1, retain: false });
  await until(() => states(CARDS - 1).includes('online 3000'), 5000, 'the last card');
  await until(() => received.filter((m) => m.retain).length === CARDS, 5000, 'every kept card');

  // MQTT-3.3.1-6: the kept card is sent on SUBSCRIBE (retain 1, MQTT-3.3.1-8), then the live one (retain 0,
  // MQTT-3.3.1-9), which is the newer: the last card received is the topic's current one. (The retained one is the
  // kept offline card, or already the live card when it was read after the publish.)
  expect(states(LIVE)).toHaveLength(2);
  expect(states(LIVE)[0]).toMatch(/^(offline 1007|online 2000) retained$/);
  expect(states(LIVE)[1]).toBe('online 2000');
  expect(states(CARDS - 1)).toEqual([`offline ${1000 + CARDS - 1} retained`, 'online 3000']);
  for (let i = 0; i < CARDS - 1; i++) if (i !== LIVE) expect(states(i)).toEqual([`offline ${1000 + i} retained`]);
});

it('holds no more than maxClientBufferBytes behind a retained stream: past it the client is closed as too slow, others keep theirs', async () => {
  const tb = await startBridge({ allowAnonymous: true, maxClientBufferBytes: 65_536 });
  const broker = tb.bridge.broker;
  const topic = tb.bridge.topics.device('cam1', 'status');
  await broker.publish({ topic, payload: card('offline', 1000), qos: 1, retain: true });
  // The retained read stays open until released: the window a slow persistence (Redis under load) keeps open.
  const persistence = (broker.aedes as unknown as { persistence: { createRetainedStreamCombi(p: string[]): Readable } }).persistence;
  const create = persistence.createRetainedStreamCombi.bind(persistence);
  const gates: (() => void)[] = [];
  persistence.createRetainedStreamCombi = (patterns) => {
    const gated = new PassThrough({ objectMode: true });
    gates.push(() => create(patterns).pipe(gated));
    return gated;
  };
  const secret = await tb.bridge.credentials.add('ops', 'admin', { replace: true });
  const slow = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops:slow', username: 'ops', password: secret });
  onTestFinished(() => slow.endAsync(true));
  const other = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops:other', username: 'ops', password: secret });
  onTestFinished(() => other.endAsync(true));
  const otherGot: string[] = [];
  other.on('message', (_t, payload, packet) => !packet.retain && otherGot.push(payload.toString()));
  const closed = new Promise((resolve) => slow.stream.once('close', resolve));

  void slow.subscribeAsync(topic, { qos: 0 }).catch(() => {});
  await until(() => gates.length === 1, 5000, "the slow client's retained read");
  const page = 'x'.repeat(8 * 1024);
  for (let i = 0; i < 9; i++) await broker.publish({ topic, payload: Buffer.from(`${i} ${page}`), qos: 0, retain: false }); // 9 × 8 KiB > 64 KiB
  await withTimeout(closed, 5000, 'the slow client closed');
  expect(tb.logs.filter((l) => l.event === 'limit' && l.limit === 'maxClientBufferBytes')).toEqual([
    expect.objectContaining({ clientId: 'ops:slow', value: 65_536, heldBytes: expect.any(Number) }),
  ]);

  // Another subscriber's window ends with its retained read and delivers what it held, in order.
  const subscribed = other.subscribeAsync(topic, { qos: 0 });
  await until(() => gates.length === 2, 5000, "the other client's retained read");
  await broker.publish({ topic, payload: Buffer.from('after'), qos: 0, retain: false });
  gates[1]?.();
  await subscribed;
  await until(() => otherGot.length === 1, 5000, 'the held message');
  expect(otherGot).toEqual(['after']);
  gates[0]?.();
});
