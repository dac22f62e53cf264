/**
 * SessionKeeper against a real bridge, over MQTT/TCP and MQTT/WebSocket: it keeps one session alive through
 * everything that ends one (bridge bye, a dropped MQTT connection, a wrong device clock, a bridge restart) and offers
 * on request.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { SessionKeeper } from '../../devices/sdk/session-keeper.ts';
import { WeriftPeer } from '../../devices/sdk/werift-peer.ts';
import { Bridge } from '../../src/bridge.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { encode, PROTOCOL_VERSION, type Message } from '../../src/protocol/index.ts';
import { startBridge, TRANSPORTS, type TestBridge } from '../helpers/bridge.ts';
import { deviceClient, FAST_BACKOFF, next, record, register, startCamera } from './helpers.ts';

async function connectedSession(keeper: SessionKeeper, other?: string) {
  const live = keeper.session;
  if (live?.phase === 'connected' && live.sessionId !== other) return live;
  const [info] = await next(keeper, 'session-connected', (s) => s.sessionId !== other, 15_000);
  return info;
}

/** Publishes on the device's down topic as the bridge would (the broker itself publishes; no client may). */
function publishDown(tb: TestBridge, deviceId: string, message: Message): Promise<void> {
  return tb.bridge.broker.publish({ topic: tb.bridge.topics.device(deviceId, 'down'), payload: encode(message), qos: 1, retain: false });
}

describe.each(TRANSPORTS)('session keeper over %s', (transport) => {
  it('offers again after the bridge ends the session with bye "timeout"', async () => {
    // No media: the bridge gives up on the session after mediaTimeoutMs and says so.
    const tb = await startBridge({ mediaTimeoutMs: 1000 });
    const client = await deviceClient(tb, transport);
    const keeper = new SessionKeeper({
      client,
      backoff: FAST_BACKOFF,
      createPeer: (iceServers) => new WeriftPeer({ iceServers, video: 'VP8' }),
    });
    onTestFinished(() => keeper.stop());
    const closed = next(keeper, 'session-closed', undefined, 15_000);
    keeper.start();
    await client.start();

    const first = await connectedSession(keeper);
    const [gone] = await closed;
    expect(gone).toMatchObject({ sessionId: first.sessionId, closeReason: 'bye:timeout' });
    const second = await connectedSession(keeper, first.sessionId);
    expect(second.timeline.connected).toBeGreaterThan(0);
    expect(keeper.counters).toMatchObject({ opened: 2, connected: 2, byesReceived: 1 });
  });

  it('keeps its session on an error that names no session and no offer (§11: about no session, nothing changes)', async () => {
    const tb = await startBridge();
    const camera = await startCamera(tb, transport);
    const live = await connectedSession(camera.keeper);
    const heard = next(camera.client, 'error');
    await publishDown(tb, 'cam1', { v: PROTOCOL_VERSION, type: 'error', ts: Date.now(), code: 'TALI_ERR_UNKNOWN_TYPE', message: 'message type is unknown', ref: { type: 'hello' } });
    await heard;
    // The keeper hears the error on the same emit: had it ended the session, it would have by now.
    expect(camera.keeper.session).toMatchObject({ sessionId: live.sessionId, phase: 'connected' });
  });

  it('reconnects with backoff when the broker drops the connection, then offers again', async () => {
    const tb = await startBridge();
    const secret = await register(tb, 'cam1');
    const camera = await startCamera(tb, transport, { secret });
    const first = await connectedSession(camera.keeper);
    const drops = record(camera.client, 'disconnected');
    const connects = record(camera.client, 'connected');
    const reconnecting = next(camera.client, 'reconnecting');

    // Another client taking the device's client ID makes the broker close the camera's connection (MQTT-3.1.4-2).
    const intruder = await connectMqtt({ target: tb.urlFor(transport), clientId: 'cam1', username: 'cam1', password: secret });
    onTestFinished(() => intruder.endAsync(true));

    const [{ attempt, delayMs }] = await reconnecting;
    expect(attempt).toBe(1);
    expect(delayMs).toBeGreaterThanOrEqual(FAST_BACKOFF.initialMs * (1 - FAST_BACKOFF.jitter));
    expect(delayMs).toBeLessThanOrEqual(FAST_BACKOFF.initialMs);
    const second = await connectedSession(camera.keeper, first.sessionId);

    expect(drops).toHaveLength(1);
    expect(connects.map((c) => c.args[0])).toEqual([{ reconnect: true }]);
    expect((connects[0]?.at ?? 0) - (drops[0]?.at ?? 0)).toBeGreaterThanOrEqual(delayMs - 1);
    expect(second.sessionId).not.toBe(first.sessionId);
    expect(camera.summary().sessionsConnected).toBe(2);
  });

  it('corrects a clock 10 minutes behind from TALI_ERR_STALE and then connects', async () => {
    const tb = await startBridge();
    const tenMinutesMs = 10 * 60_000;
    const camera = await startCamera(tb, transport, { clock: () => Date.now() - tenMinutesMs });
    const opened = record(camera.keeper, 'session-open');
    const connected = await connectedSession(camera.keeper);

    // Everything of the first session was stale (its offer and its end-of-candidates); the second one was not.
    const stale = tb.logs.filter((l) => l.event === 'rejected' && l.code === 'TALI_ERR_STALE');
    expect(stale.length).toBeGreaterThanOrEqual(1);
    expect(stale.every((l) => l.sessionId !== connected.sessionId)).toBe(true);
    expect(stale.map((l) => l.type)).toContain('offer');
    expect(camera.keeper.counters).toMatchObject({ opened: 2, connected: 1 });
    expect(opened.at(-1)?.args[0].sessionId).toBe(connected.sessionId);
    // The offset is the bridge clock minus the device clock: ten minutes, give or take the time to get the error.
    expect(Math.abs(camera.client.clockOffsetMs - tenMinutesMs)).toBeLessThan(5000);
    expect(Math.abs(camera.client.now() - Date.now())).toBeLessThan(5000);
  });

  it.each(['replaced', 'normal'])('stays idle after bye "%s" and offers when the bridge sends start', async (reason) => {
    const tb = await startBridge();
    const camera = await startCamera(tb, transport);
    const first = await connectedSession(camera.keeper);
    const ts = Date.now();
    const closed = next(camera.keeper, 'session-closed');

    // Both go through the broker in order: the first start finds a live session and is ignored.
    await publishDown(tb, 'cam1', { v: PROTOCOL_VERSION, type: 'start', ts, reason: 'viewer' });
    await publishDown(tb, 'cam1', { v: PROTOCOL_VERSION, type: 'bye', sessionId: first.sessionId, seq: 1000, ts, reason });
    expect((await closed)[0].closeReason).toBe(`bye:${reason}`);
    expect(camera.keeper.session).toBeUndefined();

    await publishDown(tb, 'cam1', { v: PROTOCOL_VERSION, type: 'start', ts, reason: 'viewer' });
    await connectedSession(camera.keeper, first.sessionId);
    expect(camera.keeper.counters).toMatchObject({ opened: 2, connected: 2, retries: 0 });
  });

  it('comes back after a bridge restart: bye "shutdown", reconnect, new bridge card, new session', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tali-restart-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    const startOn = (mqttPort: number, httpPort: number) =>
      Bridge.start({ config: { host: '127.0.0.1', mqttPort, httpPort, dataDir, logLevel: 'silent' } });
    const before = await startOn(0, 0);
    let current = before;
    onTestFinished(() => current.close());
    const secret = await before.credentials.add('cam1', 'device');
    const camera = new SimulatedCamera({
      deviceId: 'cam1',
      secret,
      connect: nodeConnector(transport === 'mqtt' ? before.mqttUrl : before.wsUrl),
      backoff: FAST_BACKOFF,
    });
    onTestFinished(() => camera.stop());
    await camera.start();
    const first = await connectedSession(camera.keeper);
    const closed = next(camera.keeper, 'session-closed');
    const dropped = next(camera.client, 'disconnected');

    await before.close();
    expect((await closed)[0].closeReason).toBe('bye:shutdown');
    await dropped;
    // Same ports (they came from port 0 and were just released), same data directory, new bridge card ts.
    current = await startOn(before.mqttPort, before.httpPort);
    const second = await connectedSession(camera.keeper, first.sessionId);
    expect(second.sessionId).not.toBe(first.sessionId);
    expect(camera.client.onlineBridge?.ts).toBeGreaterThan(0);
  });
});
