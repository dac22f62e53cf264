/**
 * Stored sessions (CleanSession 0) against an attacker with one camera identity or one scoped viewer token, over
 * TCP and WebSocket, at the byte level (issue 11, findings 1 and 8):
 *
 *  - a filter refused in a SUBSCRIBE is never stored, so nothing is queued for it while the client is away;
 *  - every delivery (live, retained, queued, after a reconnect) is checked against the rights of the client that
 *    receives it, as they are at that moment: a token with another scope, or another identity that now holds the
 *    name, gets nothing of the old session;
 *  - a stored session holds at most `maxQueuedMessages` messages and `maxQueuedBytes` bytes, and is dropped after
 *    `sessionExpiryS` offline.
 *
 * "Nothing else arrived" is checked with a sentinel: one subscriber's messages are delivered in order (MQTT §4.6), so
 * what would have come before the sentinel has come when it arrives.
 */
import { describe, expect, it } from 'vitest';
import { TokenSigner } from '../../src/security/tokens.ts';
import { startBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { RawSession } from '../helpers/raw-session.ts';
import { eventually } from '../helpers/wait.ts';

interface StoredQueue {
  outgoingStream(client: { id: string }): AsyncIterable<{ topic: string; payload: Buffer }>;
  subscriptionsByClient(client: { id: string }): Promise<{ topic: string }[]>;
}

/** What the broker's persistence holds for a client ID, read through the Aedes persistence interface. */
async function stored(tb: TestBridge, clientId: string): Promise<{ messages: number; bytes: number; filters: string[] }> {
  const persistence = (tb.bridge.broker.aedes as unknown as { persistence: StoredQueue }).persistence;
  let messages = 0;
  let bytes = 0;
  for await (const packet of persistence.outgoingStream({ id: clientId })) {
    messages++;
    bytes += packet.payload.length;
  }
  const filters = (await persistence.subscriptionsByClient({ id: clientId })).map((s) => s.topic);
  return { messages, bytes, filters };
}

async function token(tb: TestBridge, user: string, devices: readonly string[] | '*'): Promise<string> {
  const entry = await tb.bridge.credentials.get(user);
  const now = Math.floor(Date.now() / 1000);
  return (await TokenSigner.open(tb.dataDir)).sign({ sub: user, devices, iat: now, exp: now + 600, auth: now, cred: entry!.created });
}

function publish(tb: TestBridge, topic: string, payload: string, retain = false): Promise<void> {
  return tb.bridge.broker.publish({ topic, payload, qos: 1, retain });
}

describe.each(TRANSPORTS)('stored sessions over %s', (transport) => {
  it('finding 1: a camera subscribing [its down topic, #] with CleanSession 0 never gets another camera’s messages, live or after a reconnect', async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const cam2 = await connectRawDevice(tb, transport, 'cam2');
    const login = { clientId: 'cam1', username: 'cam1', password: secret, clean: false };

    const first = await RawSession.connect(url, login);
    expect(await first.session.subscribe([[t.device('cam1', 'down'), 1], ['#', 1]])).toEqual([1, 0x80]);
    // Live: cam2's card and its down topic, then the sentinel on cam1's own.
    await cam2.client.publishAsync(t.device('cam2', 'status'), '{"v":1,"type":"status","state":"online"}', { qos: 1, retain: true });
    await publish(tb, t.device('cam2', 'down'), 'for cam2 only');
    await publish(tb, t.device('cam1', 'down'), 'live sentinel');
    expect((await first.session.until(t.device('cam1', 'down'), 'live sentinel')).map((p) => p.topic)).toEqual([t.device('cam1', 'down')]);
    await first.session.disconnect();

    // Away: the denied `#` must not have been stored, so nothing of cam2's is queued for cam1.
    await cam2.client.publishAsync(t.device('cam2', 'status'), '{"v":1,"type":"status","state":"online"}', { qos: 1, retain: true });
    await publish(tb, t.device('cam2', 'down'), 'offer answer for cam2');
    await cam2.send('{"v":1,"type":"candidate"}');
    await publish(tb, t.device('cam1', 'down'), 'queued sentinel');
    expect((await stored(tb, 'cam1')).filters).toEqual([t.device('cam1', 'down')]);

    const second = await RawSession.connect(url, login);
    expect(second.connack).toEqual({ sessionPresent: true, returnCode: 0 });
    const delivered = await second.session.until(t.device('cam1', 'down'), 'queued sentinel');
    expect(delivered.map((p) => p.topic)).toEqual([t.device('cam1', 'down')]);
  });

  it('finding 1: a stored session made under one token scope is not resumed under another: nothing queued for cam1 reaches a token for cam2', async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    await tb.bridge.credentials.add('alice', 'viewer');
    const cam1 = await connectRawDevice(tb, transport, 'cam1');

    const first = await RawSession.connect(url, { clientId: 'alice', username: 'alice', password: await token(tb, 'alice', ['cam1']), clean: false });
    expect(await first.session.subscribe([[t.device('cam1', 'status'), 1], [t.viewer('alice', 'alice', 'down'), 1]])).toEqual([1, 1]);
    await first.session.disconnect();
    await cam1.client.publishAsync(t.device('cam1', 'status'), '{"v":1,"type":"status","state":"online"}', { qos: 1 });
    await publish(tb, t.viewer('alice', 'alice', 'down'), 'sentinel');

    // The same client ID with a token for cam2 only: the session made under the cam1 scope is not resumed, and
    // cam1's card does not come out of it.
    const second = await RawSession.connect(url, { clientId: 'alice', username: 'alice', password: await token(tb, 'alice', ['cam2']), clean: false });
    expect(second.connack).toEqual({ sessionPresent: false, returnCode: 0 });
    expect(await stored(tb, 'alice')).toEqual({ messages: 0, bytes: 0, filters: [] });
    expect(await second.session.subscribe([[t.device('cam1', 'status'), 1], [t.viewer('alice', 'alice', 'down'), 1]])).toEqual([0x80, 1]);
    await cam1.client.publishAsync(t.device('cam1', 'status'), '{"v":1,"type":"status","state":"offline"}', { qos: 1 });
    await publish(tb, t.viewer('alice', 'alice', 'down'), 'live sentinel');
    expect((await second.session.until(t.viewer('alice', 'alice', 'down'), 'live sentinel')).map((p) => p.topic)).toEqual([t.viewer('alice', 'alice', 'down')]);
  });

  it('finding 1: a removed viewer’s stored session is not resumed by a camera registered later under the same name', async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const password = await tb.bridge.credentials.add('alice', 'viewer');
    const cam1 = await connectRawDevice(tb, transport, 'cam1');
    const viewer = await RawSession.connect(url, { clientId: 'alice', username: 'alice', password, clean: false });
    expect(await viewer.session.subscribe([[t.allDevices('status'), 1]])).toEqual([1]);
    await viewer.session.disconnect();
    await cam1.client.publishAsync(t.device('cam1', 'status'), '{"v":1,"type":"status","state":"online"}', { qos: 1 });
    await tb.bridge.credentials.remove('alice');
    const secret = await tb.bridge.credentials.add('alice', 'device');

    const camera = await RawSession.connect(url, { clientId: 'alice', username: 'alice', password: secret, clean: false });
    expect(camera.connack).toEqual({ sessionPresent: false, returnCode: 0 });
    expect(await camera.session.subscribe([[t.device('alice', 'down'), 1]])).toEqual([1]);
    await publish(tb, t.device('alice', 'down'), 'sentinel');
    expect((await camera.session.until(t.device('alice', 'down'), 'sentinel')).map((p) => p.topic)).toEqual([t.device('alice', 'down')]);
  });

  it('finding 8: a stored session keeps at most maxQueuedMessages messages and maxQueuedBytes bytes', async () => {
    const tb = await startBridge({ maxQueuedMessages: 5, maxQueuedBytes: 4096 });
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const login = { clientId: 'cam1', username: 'cam1', password: secret, clean: false };
    const first = await RawSession.connect(url, login);
    await first.session.subscribe([[t.device('cam1', 'down'), 1]]);
    await first.session.disconnect();
    for (let i = 0; i < 20; i++) await publish(tb, t.device('cam1', 'down'), `m${i}`);
    expect(await stored(tb, 'cam1')).toMatchObject({ messages: 5 });

    const second = await RawSession.connect(url, login);
    expect((await second.session.until(t.device('cam1', 'down'), 'm4')).map((p) => p.payload.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    await second.session.disconnect();
    for (let i = 0; i < 20; i++) await publish(tb, t.device('cam1', 'down'), 'x'.repeat(1000));
    const { messages, bytes } = await stored(tb, 'cam1');
    expect(bytes).toBeLessThanOrEqual(4096);
    expect(messages).toBe(4);
  });

  it('finding 8: all sessions of the node hold at most maxQueuedBytesTotal, and at most maxConnections sessions (the oldest offline one goes)', async () => {
    const tb = await startBridge({ maxQueuedBytesTotal: 65_536, maxConnections: 2 });
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const away = async (id: string) => {
      const secret = await tb.bridge.credentials.add(id, 'device');
      const { session } = await RawSession.connect(url, { clientId: id, username: id, password: secret, clean: false });
      await session.subscribe([[t.device(id, 'down'), 1]]);
      await session.disconnect();
      return secret;
    };
    await away('cam1');
    await away('cam2');
    await publish(tb, t.device('cam1', 'down'), 'x'.repeat(40_000));
    await publish(tb, t.device('cam2', 'down'), 'y'.repeat(40_000));
    expect([(await stored(tb, 'cam1')).messages, (await stored(tb, 'cam2')).messages]).toEqual([1, 0]);
    expect(tb.logs.filter((l) => l.event === 'limit' && l.limit === 'maxQueuedBytesTotal')).toEqual([expect.objectContaining({ clientId: 'cam2' })]);
    // A third stored session on a node of maxConnections 2: cam1's, the oldest offline, is dropped, and its bytes with it.
    await away('cam3');
    expect(await stored(tb, 'cam1')).toEqual({ messages: 0, bytes: 0, filters: [] });
    await publish(tb, t.device('cam2', 'down'), 'y'.repeat(40_000));
    expect((await stored(tb, 'cam2')).messages).toBe(1);
  });

  it('finding 8: a stored session is dropped sessionExpiryS after its client left; one still connected is kept', async () => {
    const tb = await startBridge({ sessionExpiryS: 1 });
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const secret2 = await tb.bridge.credentials.add('cam2', 'device');
    const away = await RawSession.connect(url, { clientId: 'cam1', username: 'cam1', password: secret, clean: false });
    await away.session.subscribe([[t.device('cam1', 'down'), 1]]);
    const staying = await RawSession.connect(url, { clientId: 'cam2', username: 'cam2', password: secret2, clean: false });
    await staying.session.subscribe([[t.device('cam2', 'down'), 1]]);
    await away.session.disconnect();
    await publish(tb, t.device('cam1', 'down'), 'queued');
    await eventually(async () => {
      const s = await stored(tb, 'cam1');
      return s.messages === 0 && s.filters.length === 0;
    }, 5000, 'the stored session to expire');
    expect((await stored(tb, 'cam2')).filters).toEqual([t.device('cam2', 'down')]);
    const back = await RawSession.connect(url, { clientId: 'cam1', username: 'cam1', password: secret, clean: false });
    expect(back.connack).toEqual({ sessionPresent: false, returnCode: 0 });
  });
});
