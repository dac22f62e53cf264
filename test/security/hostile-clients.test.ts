/**
 * Issue 11, broker side, over TCP and WebSocket: what one address, one camera identity or one viewer token could do
 * to the broker before, each as an attacker would do it.
 *
 *  - finding 4: silent connections from one address no longer fill the pending pool (a per-address pending limit);
 *  - finding 9: a last will is a publish: its topic and payload are checked at CONNECT like any publish;
 *  - finding 12: a steady publish flood below the old "in a row" threshold is disconnected, and every dropped
 *    message counts as TALI_ERR_RATE_LIMITED in tali_errors_total;
 *  - finding 15: client IDs of users whose names share a prefix cannot squat each other (separator ":").
 */
import { describe, expect, it } from 'vitest';
import { TokenSigner } from '../../src/security/tokens.ts';
import { startBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { connectPacket, publishPacket, RawConnection, TYPE } from '../helpers/raw-mqtt.ts';
import { RawSession } from '../helpers/raw-session.ts';
import { until, withTimeout } from '../helpers/wait.ts';
import { scrape } from '../ops/prometheus.ts';

async function connack(tb: TestBridge, url: string, fields: Parameters<typeof connectPacket>[0], localAddress?: string): Promise<number> {
  const conn = await RawConnection.open(url, localAddress ? { localAddress } : {});
  conn.write(connectPacket(fields));
  const code = (await conn.next(TYPE.CONNACK)).body[1] as number;
  conn.destroy();
  return code;
}

describe.each(TRANSPORTS)('hostile clients over %s', (transport) => {
  it('finding 4: silent connections from one address hold at most maxPendingConnectionsPerAddress places; another address still gets in', async () => {
    const tb = await startBridge({ maxPendingConnections: 40 });
    const url = tb.urlFor(transport);
    const silent = await Promise.all(Array.from({ length: 40 }, () => RawConnection.open(url)));
    const trips = () => tb.logs.filter((l) => l.event === 'limit' && l.limit === 'maxPendingConnectionsPerAddress').length;
    await until(() => trips() === 8, 5000, 'the 8 connections over the per-address pending limit to be refused');
    expect(tb.bridge.broker.gate.connections.pending).toBe(32);
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    expect(await connack(tb, url, { clientId: 'cam1', username: 'cam1', password: secret }, '127.0.0.2')).toBe(0);
    for (const c of silent) c.destroy();
  });

  it("finding 9: a camera whose will aims at another camera's card is refused at CONNECT (CONNACK 5); its own card is fine", async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const url = tb.urlFor(transport);
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const offline = '{"v":1,"type":"status","state":"offline"}';
    const login = { clientId: 'cam1', username: 'cam1', password: secret };
    expect(await connack(tb, url, { ...login, will: { topic: t.device('cam2', 'status'), payload: offline, qos: 1, retain: true } })).toBe(5);
    expect(await connack(tb, url, { ...login, will: { topic: t.device('cam1', 'down'), payload: offline, qos: 1 } })).toBe(5);
    expect(tb.logs.filter((l) => l.event === 'denied' && l.action === 'will')).toEqual([
      expect.objectContaining({ identity: 'cam1', topic: t.device('cam2', 'status') }),
      expect.objectContaining({ identity: 'cam1', topic: t.device('cam1', 'down') }),
    ]);
    // Its own offline card as will: accepted, and published when the connection drops.
    const viewerSecret = await tb.bridge.credentials.add('alice', 'viewer');
    const viewer = await RawSession.connect(url, { clientId: 'alice', username: 'alice', password: viewerSecret });
    await viewer.session.subscribe([[t.allDevices('status'), 0]]);
    const cam = await RawSession.connect(url, { ...login, will: { topic: t.device('cam1', 'status'), payload: offline, qos: 1, retain: true } });
    expect(cam.connack.returnCode).toBe(0);
    await cam.session.drop();
    await viewer.session.until(t.device('cam1', 'status'), offline);
  });

  it('finding 9: a token scoped to cam1 cannot leave a will that watches cam2 (the payload is checked too)', async () => {
    const tb = await startBridge();
    const t = tb.bridge.topics;
    const user = await tb.bridge.credentials.add('alice', 'viewer').then(() => tb.bridge.credentials.get('alice'));
    const now = Math.floor(Date.now() / 1000);
    const token = (await TokenSigner.open(tb.dataDir)).sign({ sub: 'alice', devices: ['cam1'], iat: now, exp: now + 600, auth: now, cred: user!.created });
    // A well-formed watch: a scoped token's payloads are read with the relay's decoder, and one it cannot read is
    // refused whatever the device (every decision fails closed).
    const watch = (deviceId: string) => JSON.stringify({ v: 1, type: 'watch', sessionId: 'w-hostile-0001', seq: 1, ts: Date.now(), deviceId, sdp: 'v=0\r\n' });
    const login = { clientId: 'alice', username: 'alice', password: token };
    expect(await connack(tb, tb.urlFor(transport), { ...login, will: { topic: t.viewer('alice', 'alice', 'up'), payload: watch('cam2'), qos: 1 } })).toBe(5);
    expect(await connack(tb, tb.urlFor(transport), { ...login, will: { topic: t.viewer('alice', 'alice', 'up'), payload: watch('cam1'), qos: 1 } })).toBe(0);
  });

  it('finding 12: a device publishing steadily at 250 messages/s (rate 20, burst 50) is disconnected; each dropped message is counted as TALI_ERR_RATE_LIMITED', async () => {
    const tb = await startBridge();
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    const { session } = await RawSession.connect(tb.urlFor(transport), { clientId: 'cam1', username: 'cam1', password: secret });
    const junk = publishPacket(tb.bridge.topics.device('cam1', 'up'), '{}', { qos: 0 });
    // 250 a second, evenly: at most ~13 arrive between two refills of the bucket (every 50 ms), far below the 50
    // "in a row" that used to be needed, so the old counter never reached it.
    const started = performance.now();
    let sent = 0;
    const pump = setInterval(() => {
      const due = Math.floor(((performance.now() - started) / 1000) * 250);
      for (; sent < due; sent++) session.conn.write(junk);
    }, 4);
    try {
      await withTimeout(session.conn.closed, 10_000, 'the flooding device to be disconnected');
    } finally {
      clearInterval(pump);
    }
    expect(tb.logs.filter((l) => l.event === 'limit' && l.limit === 'publishRate').at(-1)).toMatchObject({ identity: 'cam1', msg: expect.stringMatching(/connection closed/) });
    const dropped = tb.bridge.broker.gate.counters.limits.publishRate ?? 0;
    const metrics = await scrape(`http://127.0.0.1:${tb.bridge.httpPort}/metrics`);
    expect(metrics.value('tali_errors_total', { code: 'TALI_ERR_RATE_LIMITED' })).toBe(dropped - 1);
    expect(dropped).toBeGreaterThan(50);
  });

  it('finding 15: user "alice" cannot hold client ID "alice-bob", which belongs to user "alice-bob"; "alice:tab" is hers', async () => {
    const tb = await startBridge();
    const url = tb.urlFor(transport);
    const alice = await tb.bridge.credentials.add('alice', 'viewer');
    const bob = await tb.bridge.credentials.add('alice-bob', 'viewer');
    expect(await connack(tb, url, { clientId: 'alice-bob', username: 'alice', password: alice })).toBe(2);
    const held = await RawSession.connect(url, { clientId: 'alice:tab', username: 'alice', password: alice });
    expect(held.connack.returnCode).toBe(0);
    expect(await connack(tb, url, { clientId: 'alice-bob', username: 'alice-bob', password: bob })).toBe(0);
    expect(await connack(tb, url, { clientId: 'alice-bob:1', username: 'alice-bob', password: bob })).toBe(0);
    // Neither may take the other's.
    expect(await connack(tb, url, { clientId: 'alice:tab', username: 'alice-bob', password: bob })).toBe(2);
    expect(await connack(tb, url, { clientId: 'alice-bob:1', username: 'alice', password: alice })).toBe(2);
  });
});
