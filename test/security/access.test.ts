/**
 * Every denial of the access rules, over TCP and WebSocket: another device's topics, wildcards that would reach
 * other devices, $SYS, a viewer posing as a device, a device posing as the bridge, wrong passwords, anonymous
 * clients, and client IDs that would take over someone else's session. Each denial is logged once, with identity
 * and address and without the secret.
 */
import { describe, expect, it } from 'vitest';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { startBridge, TRANSPORTS, type TestBridge, type Transport } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { connectPacket, RawConnection, TYPE } from '../helpers/raw-mqtt.ts';
import { withTimeout } from '../helpers/wait.ts';

async function login(tb: TestBridge, transport: Transport, clientId: string, username?: string, password?: string) {
  const client = await connectMqtt({ target: tb.urlFor(transport), clientId, username, password });
  return client;
}

function closedSoon(client: { once(e: 'close', f: () => void): unknown }): Promise<void> {
  return withTimeout(new Promise<void>((resolve) => client.once('close', () => resolve())), 5000, 'the broker to close the connection');
}

describe.each(TRANSPORTS)('access rules over %s', (transport) => {
  it("a device cannot subscribe to another device's topics, nor by wildcard, nor to $SYS (SUBACK 0x80, logged)", async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport, 'cam1');
    await connectRawDevice(tb, transport, 'cam2');
    const t = tb.bridge.topics;
    for (const filter of [t.device('cam2', 'down'), t.device('cam2', 'up'), t.allDevices('down'), t.allDevices('up'), `${t.root}/#`, '#', `${t.root}/v1/+/cam2/down`, '$SYS/#']) {
      await expect(cam.client.subscribeAsync(filter, { qos: 1 }), filter).rejects.toThrow();
      const denial = tb.logs.filter((l) => l.event === 'denied' && l.topic === filter);
      expect(denial, filter).toEqual([expect.objectContaining({ action: 'subscribe', identity: 'cam1', role: 'device', address: expect.any(String) })]);
    }
    expect(cam.client.connected).toBe(true);
  });

  it.each([
    ["another device's up topic", (tb: TestBridge) => tb.bridge.topics.device('cam2', 'up')],
    ["another device's status card", (tb: TestBridge) => tb.bridge.topics.device('cam2', 'status')],
    ["its own down topic (the bridge's voice)", (tb: TestBridge) => tb.bridge.topics.device('cam1', 'down')],
    ['the bridge card (impersonating the bridge)', (tb: TestBridge) => tb.bridge.topics.bridge(tb.bridge.config.bridgeId)],
    ['$SYS', () => '$SYS/tali/x'],
  ])('a device publishing to %s is disconnected', async (_what, topicOf) => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport, 'cam1');
    const closed = closedSoon(cam.client);
    cam.client.publishAsync(topicOf(tb), '{}', { qos: 1 }).catch(() => {});
    await closed;
    expect(tb.logs.filter((l) => l.event === 'denied' && l.action === 'publish')).toEqual([expect.objectContaining({ identity: 'cam1', topic: topicOf(tb) })]);
  });

  it('a viewer cannot publish an offer as a device', async () => {
    const tb = await startBridge();
    const secret = await tb.bridge.credentials.add('alice', 'viewer');
    const viewer = await login(tb, transport, 'alice:tab1', 'alice', secret);
    const closed = closedSoon(viewer);
    viewer.publishAsync(tb.bridge.topics.device('cam1', 'up'), '{"v":1,"type":"offer"}', { qos: 1 }).catch(() => {});
    await closed;
    expect(tb.logs.find((l) => l.event === 'denied')).toMatchObject({ identity: 'alice', role: 'viewer', action: 'publish' });
    expect(tb.bridge.answerer.sessions.size).toBe(0);
  });

  it('wrong passwords and unknown users get CONNACK 4, logged with name and address, never the password', async () => {
    const tb = await startBridge();
    await tb.bridge.credentials.add('cam1', 'device');
    await expect(login(tb, transport, 'cam1', 'cam1', 'not-the-secret-xyz')).rejects.toThrow(/bad user ?name or password/i);
    await expect(login(tb, transport, 'ghost', 'ghost', 'whatever-secret-xyz')).rejects.toThrow(/bad user ?name or password/i);
    const failures = tb.logs.filter((l) => l.event === 'auth_failed');
    expect(failures).toEqual([
      expect.objectContaining({ username: 'cam1', address: expect.any(String), returnCode: 4 }),
      expect.objectContaining({ username: 'ghost', address: expect.any(String), returnCode: 4 }),
    ]);
    expect(JSON.stringify(tb.logs)).not.toMatch(/not-the-secret-xyz|whatever-secret-xyz/);
  });

  it('guessing passwords from one address: after 10 failures it is refused without a scrypt run; others are not', async () => {
    const tb = await startBridge();
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    for (let i = 0; i < 10; i++) await expect(login(tb, transport, 'cam1', 'cam1', `guess-${i}`)).rejects.toThrow(/bad user ?name/i);
    const started = performance.now();
    await expect(login(tb, transport, 'cam1', 'cam1', secret)).rejects.toThrow(/not authorized/i);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(tb.logs.filter((l) => l.event === 'auth_failed').at(-1)).toMatchObject({ returnCode: 5, msg: expect.stringMatching(/too many failed logins/) });
    // Another address logs in as usual.
    const elsewhere = await RawConnection.open(tb.bridge.mqttUrl, { localAddress: '127.0.0.2' });
    elsewhere.write(connectPacket({ clientId: 'cam1', username: 'cam1', password: secret }));
    expect((await elsewhere.next(TYPE.CONNACK)).body[1]).toBe(0);
    elsewhere.destroy();
  });

  it('anonymous clients are refused by default (CONNACK 5)', async () => {
    const tb = await startBridge();
    await expect(login(tb, transport, 'cam1')).rejects.toThrow(/not authorized/i);
    expect(tb.logs.filter((l) => l.event === 'auth_failed')).toEqual([expect.objectContaining({ returnCode: 5 })]);
  });

  it('--allow-anonymous lets them in as the device their client ID names, with a warning at start', async () => {
    const tb = await startBridge({ allowAnonymous: true });
    expect(tb.logs.some((l) => l.level === 40 && /anonymous/.test(String(l.msg)))).toBe(true);
    const anon = await login(tb, transport, 'cam5');
    await anon.subscribeAsync(tb.bridge.topics.device('cam5', 'down'), { qos: 1 });
    await expect(anon.subscribeAsync(tb.bridge.topics.device('cam6', 'down'), { qos: 1 })).rejects.toThrow();
    await anon.endAsync();
  });
});

describe.each(TRANSPORTS)('client IDs over %s', (transport) => {
  it("a device's client ID must be its ID (CONNACK 2)", async () => {
    const tb = await startBridge();
    const secret = await tb.bridge.credentials.add('cam1', 'device');
    await expect(login(tb, transport, 'cam2', 'cam1', secret)).rejects.toThrow(/identifier rejected/i);
  });

  it("a viewer cannot take a device's client ID, connected or not; the device stays up", async () => {
    const tb = await startBridge();
    const cam = await connectRawDevice(tb, transport, 'cam1');
    await tb.bridge.credentials.add('cam7', 'device');
    const secret = await tb.bridge.credentials.add('mallory', 'viewer');
    await expect(login(tb, transport, 'cam1', 'mallory', secret)).rejects.toThrow(/identifier rejected/i);
    await expect(login(tb, transport, 'cam7', 'mallory', secret)).rejects.toThrow(/identifier rejected/i);
    expect(cam.client.connected).toBe(true);
  });

  it("a device registered under the bridge's own client ID cannot take the answerer's session", async () => {
    const tb = await startBridge();
    const id = `tali-${tb.bridge.config.bridgeId}`;
    const secret = await tb.bridge.credentials.add(id, 'device');
    await expect(login(tb, transport, id, id, secret)).rejects.toThrow(/identifier rejected/i);
    expect(tb.bridge.answerer.ready).toBe(true);
    // The answerer still answers.
    const cam = await connectRawDevice(tb, transport, 'cam1');
    await cam.send('{');
    await cam.down.next((m) => m.code === 'TALI_ERR_MALFORMED_JSON', 5000, 'the answerer');
  });

  it('the same device connecting again takes its own session over (MQTT-3.1.4-2)', async () => {
    const tb = await startBridge();
    const first = await connectRawDevice(tb, transport, 'cam1');
    const closed = closedSoon(first.client);
    await login(tb, transport, 'cam1', 'cam1', first.secret).then((c) => c.endAsync());
    await closed;
  });
});
