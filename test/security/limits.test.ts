/**
 * Each limit on clients trips where it should, is logged (event "limit") and counted, and costs nobody else
 * anything: packet size, connections (total, per address, pending), time to CONNACK, message rate, and bytes
 * waiting for a client that does not read.
 */
import { createConnection, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { startBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { connectPacket, PINGREQ, publishPacket, RawConnection, subscribePacket, TYPE, varint } from '../helpers/raw-mqtt.ts';
import { until } from '../helpers/wait.ts';
import { scrape } from '../ops/prometheus.ts';

async function rawDevice(tb: TestBridge, transport: 'mqtt' | 'ws', id: string, localAddress?: string): Promise<RawConnection> {
  const secret = await tb.bridge.credentials.add(id, 'device', { replace: true });
  const conn = await RawConnection.open(tb.urlFor(transport), localAddress ? { localAddress } : {});
  conn.write(connectPacket({ clientId: id, username: id, password: secret }));
  expect((await conn.next(TYPE.CONNACK)).body[1]).toBe(0);
  return conn;
}

function limitLogs(tb: TestBridge, limit: string): Record<string, unknown>[] {
  return tb.logs.filter((l) => l.event === 'limit' && l.limit === limit);
}

describe.each(TRANSPORTS)('maxPacketBytes over %s', (transport) => {
  it('a packet announcing 256 MB is refused at its header, before any of its body', async () => {
    const tb = await startBridge({ maxPacketBytes: 20_000, maxMessageBytes: 4096 });
    const conn = await rawDevice(tb, transport, 'big');
    conn.write(Buffer.concat([Buffer.from([0x32]), varint(256 * 1024 * 1024 - 1)]));
    await conn.expectClosed(2000);
    expect(limitLogs(tb, 'maxPacketBytes')).toEqual([expect.objectContaining({ identity: 'big', role: 'device', address: expect.any(String) })]);
    expect((await scrape(`http://127.0.0.1:${tb.bridge.httpPort}/metrics`)).value('tali_limit_trips_total', { limit: 'maxPacketBytes' })).toBe(1);
  });

  it('a whole packet one byte over the limit closes the connection; one at the limit passes', async () => {
    const tb = await startBridge({ maxPacketBytes: 20_000, maxMessageBytes: 4096 });
    const conn = await rawDevice(tb, transport, 'edge');
    const topic = tb.bridge.topics.device('edge', 'up');
    const overhead = publishPacket(topic, '', { qos: 1 }).length;
    // The Remaining Length takes two bytes more than for the empty packet (≥ 16 384).
    const fits = publishPacket(topic, Buffer.alloc(20_000 - overhead - 2, 0x20), { qos: 1, id: 7 });
    expect(fits.length).toBe(20_000);
    conn.write(fits);
    await conn.next(TYPE.PUBACK);
    conn.write(publishPacket(topic, Buffer.alloc(20_000 - overhead - 1, 0x20), { qos: 1, id: 8 }));
    await conn.expectClosed();
    expect(limitLogs(tb, 'maxPacketBytes')).toHaveLength(1);
  });
});

describe('connection limits', () => {
  it('maxConnectionsPerAddress: the next connection from that address gets CONNACK 3; other addresses do not notice', async () => {
    const tb = await startBridge({ maxConnectionsPerAddress: 2 });
    const held = [await RawConnection.open(tb.bridge.mqttUrl), await RawConnection.open(tb.bridge.mqttUrl)];
    const third = await RawConnection.open(tb.bridge.mqttUrl);
    third.write(connectPacket({ clientId: 'x' }));
    expect((await third.next(TYPE.CONNACK)).body[1]).toBe(3);
    await third.expectClosed();
    expect(limitLogs(tb, 'maxConnectionsPerAddress')).toEqual([expect.objectContaining({ address: '127.0.0.1' })]);
    const metrics = await scrape(`http://127.0.0.1:${tb.bridge.httpPort}/metrics`);
    expect(metrics.value('tali_limit_trips_total', { limit: 'maxConnectionsPerAddress' })).toBe(1);
    const elsewhere = await rawDevice(tb, 'mqtt', 'far', '127.0.0.2');
    elsewhere.write(PINGREQ);
    await elsewhere.next(TYPE.PINGRESP);
    for (const c of held) c.destroy();
    // Released on close: the address may connect again.
    await until(() => tb.bridge.broker.gate.connections.total === 1, 2000, 'the held connections to be released');
    await rawDevice(tb, 'mqtt', 'near');
  });

  it('maxPendingConnections: connections that never finish CONNECT hold at most that many places', async () => {
    const tb = await startBridge({ maxPendingConnections: 2 });
    const silent = [await RawConnection.open(tb.bridge.mqttUrl, { localAddress: '127.0.0.3' }), await RawConnection.open(tb.bridge.mqttUrl, { localAddress: '127.0.0.4' })];
    const refused = await RawConnection.open(tb.bridge.mqttUrl, { localAddress: '127.0.0.5' });
    expect((await refused.next(TYPE.CONNACK)).body[1]).toBe(3);
    expect(limitLogs(tb, 'maxPendingConnections')).toHaveLength(1);
    // One of them completes its CONNECT: no longer pending, so a newcomer is admitted.
    const secret = await tb.bridge.credentials.add('late', 'device');
    silent[0]?.write(connectPacket({ clientId: 'late', username: 'late', password: secret }));
    expect((await silent[0]!.next(TYPE.CONNACK)).body[1]).toBe(0);
    await rawDevice(tb, 'mqtt', 'newcomer');
  });

  it('maxConnections: one more client is refused with CONNACK 3 (mqtt.js: "Server unavailable")', async () => {
    const tb = await startBridge({ maxConnections: 2 });
    await connectRawDevice(tb, 'mqtt', 'c1');
    await connectRawDevice(tb, 'ws', 'c2');
    const secret = await tb.bridge.credentials.add('c3', 'device');
    await expect(connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'c3', username: 'c3', password: secret })).rejects.toThrow(/unavailable/i);
    expect(limitLogs(tb, 'maxConnections')).toHaveLength(1);
  });

  it('the HTTP port holds at most maxConnections + 256 sockets; idle ones beyond that are closed at once', async () => {
    const tb = await startBridge({ maxConnections: 1 });
    const open: Socket[] = [];
    onTestFinished(() => open.forEach((s) => s.destroy()));
    const connect = () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = createConnection({ host: '127.0.0.1', port: tb.bridge.httpPort }, () => resolve(socket));
        socket.once('error', reject);
        open.push(socket);
      });
    for (let i = 0; i < 257; i++) await connect();
    const extra = await connect();
    await new Promise((resolve) => extra.once('close', resolve)); // the server drops it; the test times out if not
    expect(open.slice(0, 257).every((s) => !s.destroyed)).toBe(true);
  });

  it('mqttConnectTimeoutMs: a connection that says nothing is closed', async () => {
    const tb = await startBridge({ mqttConnectTimeoutMs: 500 });
    const silent = await RawConnection.open(tb.bridge.mqttUrl);
    const half = await RawConnection.open(tb.bridge.wsUrl);
    half.write(connectPacket({ clientId: 'slow' }).subarray(0, 6));
    await silent.expectClosed(3000);
    await half.expectClosed(3000);
    expect(limitLogs(tb, 'connectTimeoutMs')).toHaveLength(2);
    expect(tb.bridge.broker.gate.connections).toEqual({ total: 0, pending: 0 });
  });
});

describe.each(TRANSPORTS)('publishRate over %s', (transport) => {
  it('over the rate: dropped (still acknowledged) with TALI_ERR_RATE_LIMITED; far over it: disconnected; the neighbour does not notice', async () => {
    const tb = await startBridge({ publishRate: 2, publishBurst: 5 });
    const cam = await connectRawDevice(tb, transport, 'fast');
    const neighbour = await connectRawDevice(tb, transport, 'calm');
    // 5 pass (each answered TALI_ERR_MALFORMED_JSON by the answerer), the rest are dropped but acknowledged.
    await Promise.all(Array.from({ length: 8 }, () => cam.send('{')));
    await cam.down.next((m) => m.code === 'TALI_ERR_RATE_LIMITED', 5000, 'TALI_ERR_RATE_LIMITED');
    expect(cam.client.connected).toBe(true);
    await neighbour.send('{');
    await neighbour.down.next((m) => m.code === 'TALI_ERR_MALFORMED_JSON', 5000, "the neighbour's own reply");
    expect(neighbour.down.messages.some((m) => m.json?.code === 'TALI_ERR_RATE_LIMITED')).toBe(false);
    const closed = new Promise<void>((resolve) => cam.client.once('close', () => resolve()));
    for (let i = 0; i < 10; i++) cam.client.publishAsync(cam.topics.device('fast', 'up'), '{', { qos: 0 }).catch(() => {});
    await closed;
    expect(limitLogs(tb, 'publishRate').at(-1)).toMatchObject({ identity: 'fast', msg: expect.stringMatching(/connection closed/) });
  });

  it('reconnecting does not refill the bucket (it belongs to the identity)', async () => {
    const tb = await startBridge({ publishRate: 1, publishBurst: 4 });
    // SUBSCRIBE takes a token too: 1 + 3 publishes empty the bucket.
    const first = await connectRawDevice(tb, transport, 'again');
    for (let i = 0; i < 3; i++) await first.send('{');
    for (let i = 0; i < 3; i++) await first.down.next((m) => m.code === 'TALI_ERR_MALFORMED_JSON', 5000, 'reply');
    await first.client.endAsync();
    const second = await connectRawDevice(tb, transport, 'again');
    // A fresh bucket would let all three through; the identity's bucket has refilled a token or two at most.
    for (let i = 0; i < 3; i++) await second.send('{');
    await second.down.next((m) => m.code === 'TALI_ERR_RATE_LIMITED', 5000, 'TALI_ERR_RATE_LIMITED after reconnecting');
  });
});

/**
 * A client whose socket stops taking data: its own reply queue grows. A stream whose writes never complete plays
 * it, handed to the broker like a socket; the broker closes it at maxClientBufferBytes, and in the meantime its
 * replies never hold up anybody else's (Aedes would otherwise wait for 'drain' inside the shared router).
 */
describe('maxClientBufferBytes', () => {
  it('a client that stops reading is closed at the limit; another device keeps its round trips', async () => {
    const tb = await startBridge({ maxClientBufferBytes: 65_536, publishRate: 100_000, publishBurst: 100_000 });
    const secret = await tb.bridge.credentials.add('stuck', 'device');
    const written: Buffer[] = [];
    let reading = true;
    const held: (() => void)[] = [];
    const stuck = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, callback) {
        written.push(chunk);
        if (reading) callback();
        else held.push(callback);
      },
    });
    const closed = new Promise((resolve) => stuck.once('close', resolve));
    tb.bridge.broker.accept(stuck, 'tcp', '127.0.0.9');
    stuck.push(connectPacket({ clientId: 'stuck', username: 'stuck', password: secret }));
    stuck.push(subscribePacket(1, [[tb.bridge.topics.device('stuck', 'down'), 0]]));
    await until(() => Buffer.concat(written).includes(Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00])), 5000, 'SUBACK');
    reading = false;
    const neighbour = await connectRawDevice(tb, 'mqtt', 'reader');
    const junk = publishPacket(tb.bridge.topics.device('stuck', 'up'), '{', { qos: 0 });
    for (let round = 0; round < 40 && !stuck.destroyed; round++) {
      for (let i = 0; i < 20; i++) stuck.push(junk);
      const started = performance.now();
      await neighbour.send('{');
      await neighbour.down.next((m) => m.code === 'TALI_ERR_MALFORMED_JSON', 2000, 'the neighbour reply');
      expect(performance.now() - started).toBeLessThan(1000);
    }
    await closed;
    expect(limitLogs(tb, 'maxClientBufferBytes')).toEqual([expect.objectContaining({ identity: 'stuck', address: '127.0.0.9' })]);
    for (const callback of held) callback();
  });
});
