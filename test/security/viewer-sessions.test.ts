/**
 * A viewer session is no more than the login that asked for it (issue 11, findings 2, 5, 7 and 13, and issue 12's
 * "a watch outside the token's scope"), over MQTT/TCP and MQTT/WebSocket:
 *
 *  - #2  a token scoped to cam1 cannot watch cam2 by putting a UTF-8 byte order mark (or anything else the relay's
 *        decoder reads and a naive check would not) before its `watch`; it gets TALI_ERR_FORBIDDEN and keeps its
 *        connection;
 *  - #13 a cam1 token reads nothing of, and cannot end, the same user's cam2 session on another connection;
 *  - #5  a session ends with its connection: at token expiry, at a clean DISCONNECT without bye, at an unclean end
 *        without a will, when the user is removed or re-keyed; the bridge stops sending and stops counting it;
 *  - #7  watches of cameras that do not exist are refused (one viewer cannot fill maxViewers with them), a watch
 *        waiting for a camera that never comes ends, and each user has its own cap.
 *
 * The attacker's connection uses its own topics as the bridge lays them out. `ownTopics` also knows the layout
 * before per-connection topics (one up/down pair per user), so that this file can be run against that version of
 * the bridge to see each test fail there.
 */
import type { MqttClient } from 'mqtt';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RTCPeerConnection } from 'werift';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { PROTOCOL_VERSION, type Topics } from '../../src/protocol/topics.ts';
import { TokenSigner } from '../../src/security/tokens.ts';
import { codecParameters, VIDEO_CODECS } from '../../src/webrtc/codecs.ts';
import { withoutDefaultStun } from '../../src/webrtc/default-stun.ts';
import { startBridge, TRANSPORTS, type TestBridge, type Transport } from '../helpers/bridge.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { streamCamera } from '../helpers/streaming-camera.ts';
import { Inbox, until, withTimeout } from '../helpers/wait.ts';
import { scrape } from '../ops/prometheus.ts';

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** A viewer connection's own up and down topics (see the file comment for the older layout). */
function ownTopics(topics: Topics, user: string, clientId: string): { up: string; down: string } {
  const viewer = topics.viewer as unknown as (...args: string[]) => string;
  return viewer.length >= 3 ? { up: viewer.call(topics, user, clientId, 'up'), down: viewer.call(topics, user, clientId, 'down') } : { up: viewer.call(topics, user, 'up'), down: viewer.call(topics, user, 'down') };
}

interface Viewer {
  client: MqttClient;
  clientId: string;
  up: string;
  down: Inbox;
  publish(message: Record<string, unknown> | Buffer): Promise<void>;
}

/** A viewer connection that subscribes to its own down topic; with `will`, `leave` is its last will. */
async function connectViewer(tb: TestBridge, transport: Transport, user: string, password: string, options: { clientId?: string; will?: boolean } = {}): Promise<Viewer> {
  const clientId = options.clientId ?? `${user}:${Math.random().toString(36).slice(2, 8)}`;
  const { up, down } = ownTopics(tb.bridge.topics, user, clientId);
  const will = options.will ? { topic: up, payload: Buffer.from(JSON.stringify({ v: PROTOCOL_VERSION, type: 'leave', ts: Date.now() })), qos: 1 as const, retain: false } : undefined;
  const client = await connectMqtt({ target: tb.urlFor(transport), clientId, username: user, password, will });
  onTestFinished(() => void client.end(true));
  const inbox = new Inbox(client);
  await client.subscribeAsync(down, { qos: 1 });
  return {
    client,
    clientId,
    up,
    down: inbox,
    publish: (message) => client.publishAsync(up, Buffer.isBuffer(message) ? message : JSON.stringify(message), { qos: 1 }).then(() => {}),
  };
}

/** A recvonly werift peer's offer, and a count of the video packets it receives. */
async function viewerPeer(): Promise<{ pc: RTCPeerConnection; sdp: string; video: () => number }> {
  const pc = new RTCPeerConnection({ codecs: { video: VIDEO_CODECS.map(codecParameters), audio: [] } });
  onTestFinished(() => pc.close());
  pc.addTransceiver('video', { direction: 'recvonly' });
  let video = 0;
  pc.onTrack.subscribe((track) => track.onReceiveRtp.subscribe(() => video++));
  const offer = await pc.createOffer();
  withoutDefaultStun(pc);
  await pc.setLocalDescription(offer);
  return { pc, sdp: pc.localDescription?.sdp ?? '', video: () => video };
}

function watch(sessionId: string, deviceId: string, sdp: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { v: PROTOCOL_VERSION, type: 'watch', sessionId, seq: 1, ts: Date.now(), deviceId, sdp, ...extra };
}

/** Watches `deviceId` and waits for the bridge's answer (the session exists and is served). */
async function watchAnswered(viewer: Viewer, sessionId: string, deviceId: string): Promise<void> {
  const peer = await viewerPeer();
  await viewer.publish(watch(sessionId, deviceId, peer.sdp));
  await viewer.down.next((m) => m.type === 'answer' && m.sessionId === sessionId, 10_000, `the answer to ${sessionId}`);
}

/** Watches `deviceId` and waits for video to arrive. */
async function watchWithVideo(viewer: Viewer, sessionId: string, deviceId: string): Promise<{ pc: RTCPeerConnection; video: () => number }> {
  const peer = await viewerPeer();
  await viewer.publish(watch(sessionId, deviceId, peer.sdp, { connection: 'secret-of-this-tab' }));
  const answer = await viewer.down.next((m) => m.type === 'answer' && m.sessionId === sessionId, 10_000, `the answer to ${sessionId}`);
  await peer.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
  // ICE + DTLS in JavaScript on both sides: seconds when the machine is loaded.
  await until(() => peer.video() > 10, 20_000, `video of ${deviceId}`);
  return peer;
}

async function token(tb: TestBridge, user: string, devices: string[] | '*', ttlS: number): Promise<string> {
  const stored = await tb.bridge.credentials.get(user);
  const now = Math.floor(Date.now() / 1000);
  return (await TokenSigner.open(tb.dataDir)).sign({ sub: user, devices, iat: now, exp: now + ttlS, auth: now, cred: stored!.created });
}

/**
 * Streaming cameras (cam1, and cam2 if asked), and user alice. The bridge starts its media threads with it, as
 * `tali start` does: each camera may go to another thread, and a thread's boot (~1 s under load) is not what the
 * camera's 5 s answer wait is there to cover.
 */
async function setUp(transport: Transport, config: Record<string, unknown> = {}, cameras = ['cam1']): Promise<{ tb: TestBridge; password: string }> {
  const tb = await startBridge({ mediaWorkersPrestart: true, ...config });
  for (const id of cameras) await streamCamera(tb, await connectRawDevice(tb, transport, id), `sess-${id}`);
  return { tb, password: await tb.bridge.credentials.add('alice', 'viewer') };
}

describe.each(TRANSPORTS)('viewer sessions over %s', (transport) => {
  it('#2: a cam1 token cannot watch cam2 behind a byte order mark; it gets TALI_ERR_FORBIDDEN and keeps its connection', async () => {
    const { tb } = await setUp(transport, {}, ['cam1', 'cam2']);
    const scoped = await connectViewer(tb, transport, 'alice', await token(tb, 'alice', ['cam1'], 600));
    const peer = await viewerPeer();
    await scoped.publish(Buffer.concat([BOM, Buffer.from(JSON.stringify(watch('bom-watch-cam2', 'cam2', peer.sdp)))]));
    expect(await scoped.down.next((m) => m.sessionId === 'bom-watch-cam2', 5000, 'the reply to the BOM watch')).toMatchObject({ type: 'error', code: 'TALI_ERR_FORBIDDEN', ref: { type: 'watch' } });
    // Whatever the relay's decoder would not read is not passed on either: the same error the relay would send.
    await scoped.publish(Buffer.from('{"v":1,"type":"watch","deviceId":"cam2"'));
    expect(await scoped.down.next((m) => m.type === 'error', 5000, 'the reply to malformed JSON')).toMatchObject({ code: 'TALI_ERR_MALFORMED_JSON' });
    expect(scoped.client.connected).toBe(true);
    expect([...tb.bridge.relay.viewers.values()].filter((v) => v.deviceId === 'cam2')).toEqual([]);
    // Its own camera it may watch, on the same connection.
    await watchWithVideo(scoped, 'scoped-watch-cam1', 'cam1');
    expect(scoped.down.messages.filter((m) => m.json?.type === 'answer' && m.json.sessionId === 'bom-watch-cam2')).toEqual([]);
  });

  it("#13: a cam1 token reads nothing of the same user's cam2 session on another connection, and cannot end it", async () => {
    const { tb, password } = await setUp(transport, {}, ['cam1', 'cam2']);
    const tab = await connectViewer(tb, transport, 'alice', password, { will: true });
    const scoped = await connectViewer(tb, transport, 'alice', await token(tb, 'alice', ['cam1'], 600));
    const peer = await watchWithVideo(tab, 'tab-watch-cam2', 'cam2');
    const session = [...tb.bridge.relay.viewers.values()].find((v) => v.sessionId === 'tab-watch-cam2')!;
    // Its own connection's topics: a bye and a leave there concern its own sessions only.
    await scoped.publish({ v: 1, type: 'bye', sessionId: 'tab-watch-cam2', seq: 2, ts: Date.now(), reason: 'normal' });
    await scoped.publish({ v: 1, type: 'candidate', sessionId: 'tab-watch-cam2', seq: 3, ts: Date.now(), candidate: 'candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host' });
    expect(await scoped.down.next((m) => m.type === 'error' && m.sessionId === 'tab-watch-cam2', 5000, 'the refused candidate')).toMatchObject({ code: 'TALI_ERR_UNKNOWN_SESSION' });
    await scoped.publish({ v: 1, type: 'adopt', sessionId: 'tab-watch-cam2', seq: 4, ts: Date.now(), deviceId: 'cam2', connection: 'secret-of-this-tab' });
    expect(await scoped.down.next((m) => m.type === 'error' && m.ref !== undefined && (m.ref as { type?: string }).type === 'adopt', 5000, 'the refused adopt')).toMatchObject({ code: 'TALI_ERR_FORBIDDEN' });
    await scoped.publish({ v: 1, type: 'leave', ts: Date.now() });
    // The other connection's topics it may not even subscribe to.
    await expect(scoped.client.subscribeAsync(ownTopics(tb.bridge.topics, 'alice', tab.clientId).down, { qos: 1 })).rejects.toThrow();
    await expect(scoped.client.subscribeAsync(`${tb.bridge.topics.root}/v1/viewer/alice/+/down`, { qos: 1 })).rejects.toThrow();
    // The session goes on: still the same one, still sending, and the tab got a stream notice on it meanwhile.
    const before = peer.video();
    await until(() => peer.video() > before + 10, 10_000, 'video still flowing to the tab');
    expect(tb.bridge.relay.viewers.get(`alice/tab-watch-cam2`)).toBe(session);
    expect(session.state).toBe('connected');
    expect(scoped.down.messages.filter((m) => m.json?.sessionId === 'tab-watch-cam2' && m.json.type !== 'error')).toEqual([]);
  });

  it('#5: the session ends when its token expires (no will), and stays ended when the user is removed', async () => {
    const { tb, password } = await setUp(transport);
    // The watch is set up on a login that does not expire: ICE and DTLS take seconds on a loaded machine, and a token
    // short enough for a test expired before the video came (once under two concurrent suites). Then a connection
    // whose token is about to expire takes the session over (adopt, §16.4), as a viewer refreshing its token does.
    const tab = await connectViewer(tb, transport, 'alice', password);
    const peer = await watchWithVideo(tab, 'token-watch', 'cam1');
    const session = tb.bridge.relay.viewers.get('alice/token-watch')!;
    const viewer = await connectViewer(tb, transport, 'alice', await token(tb, 'alice', '*', 5)); // whole seconds: 4–5 s from now
    const closed = new Promise<void>((resolve) => viewer.client.once('close', () => resolve()));
    await viewer.publish({ v: PROTOCOL_VERSION, type: 'adopt', sessionId: 'token-watch', seq: 2, ts: Date.now(), deviceId: 'cam1', connection: 'secret-of-this-tab' });
    expect(await viewer.down.next((m) => m.sessionId === 'token-watch', 5000, 'the adopted session')).toMatchObject({ type: 'stream' });
    expect(session.state).not.toBe('closed');
    await withTimeout(closed, 15_000, 'the token to expire');
    await until(() => session.state === 'closed', 5000, 'the session to end with its connection');
    expect(tab.client.connected).toBe(true); // it ended with the token's connection, not with the one that watched
    await tb.bridge.credentials.remove('alice');
    // Nothing is forwarded to it any more (the camera's stream no longer holds it) and the bridge does not count it.
    expect(tb.bridge.relay.viewers.size).toBe(0);
    expect(tb.bridge.relay.streams.get('cam1')?.viewers.has(session)).toBe(false);
    expect((await scrape(`http://127.0.0.1:${tb.bridge.httpPort}/metrics`)).value('tali_viewers')).toBe(0);
    expect(peer.video()).toBeGreaterThan(0);
  });

  it.each([
    ['a clean DISCONNECT without bye', async (v: Viewer): Promise<void> => void (await v.client.endAsync())],
    ['an unclean end without a will', async (v: Viewer): Promise<void> => void v.client.stream.destroy()],
  ] as const)('#5: the session ends at %s', async (_what, end) => {
    const { tb, password } = await setUp(transport);
    const viewer = await connectViewer(tb, transport, 'alice', password);
    await watchWithVideo(viewer, 'ending-watch', 'cam1');
    const session = tb.bridge.relay.viewers.get('alice/ending-watch')!;
    await end(viewer);
    await until(() => session.state === 'closed', 5000, 'the session to end with its connection');
  });

  it('#5, #6: the session ends when its user is removed, or re-keyed under a token connection', async () => {
    const { tb, password } = await setUp(transport);
    const byPassword = await connectViewer(tb, transport, 'alice', password);
    await watchWithVideo(byPassword, 'password-watch', 'cam1');
    const bob = await tb.bridge.credentials.add('bob', 'viewer');
    const byToken = await connectViewer(tb, transport, 'bob', await token(tb, 'bob', '*', 600));
    await watchWithVideo(byToken, 'token-watch', 'cam1');
    expect(bob).not.toBe('');
    const [first, second] = [tb.bridge.relay.viewers.get('alice/password-watch')!, tb.bridge.relay.viewers.get('bob/token-watch')!];
    await tb.bridge.credentials.remove('alice');
    await until(() => first.state === 'closed', 5000, "the removed user's session to end");
    await tb.bridge.credentials.add('bob', 'viewer', { replace: true });
    await until(() => second.state === 'closed', 5000, "the re-keyed user's token session to end");
  });

  it('#7: 1 020 watches of cameras that do not exist are refused and hold nothing; others still watch', async () => {
    const { tb, password } = await setUp(transport, { publishRate: 100_000, publishBurst: 100_000 });
    const mallory = await connectViewer(tb, transport, 'alice', password);
    const peer = await viewerPeer();
    for (let i = 0; i < 1020; i++) await mallory.publish(watch(`ghost-watch-${i}`, `ghost-${i}`, peer.sdp));
    const refusals = await Promise.all(Array.from({ length: 1020 }, (_, i) => mallory.down.next((m) => m.sessionId === `ghost-watch-${i}`, 20_000, `the reply to ghost ${i}`)));
    expect(new Set(refusals.map((m) => `${m.type} ${m.code}`))).toEqual(new Set(['error TALI_ERR_UNKNOWN_DEVICE']));
    expect(tb.bridge.relay.viewers.size).toBe(0);
    const bob = await connectViewer(tb, transport, 'bob', await tb.bridge.credentials.add('bob', 'viewer'));
    await watchAnswered(bob, 'bob-watch', 'cam1');
  });

  it('#7: each user has its own cap (maxViewersPerUser), and a watch of a camera that never starts ends (watchWaitMs)', async () => {
    const { tb, password } = await setUp(transport, { maxViewersPerUser: 2, watchWaitMs: 1500 }, ['cam1', 'cam2']);
    const alice = await connectViewer(tb, transport, 'alice', password);
    for (const id of ['cap-watch-1', 'cap-watch-2']) await watchAnswered(alice, id, 'cam1');
    const peer = await viewerPeer();
    await alice.publish(watch('cap-watch-3', 'cam2', peer.sdp));
    expect(await alice.down.next((m) => m.sessionId === 'cap-watch-3', 5000, 'the third watch')).toMatchObject({ type: 'error', code: 'TALI_ERR_SESSION_LIMIT' });
    const bob = await connectViewer(tb, transport, 'bob', await tb.bridge.credentials.add('bob', 'viewer'));
    await watchAnswered(bob, 'bob-watch', 'cam2');
    // A registered camera that is not connected: waiting, then the session ends.
    await tb.bridge.credentials.add('cam9', 'device');
    await bob.publish(watch('bob-waits', 'cam9', peer.sdp));
    expect(await bob.down.next((m) => m.sessionId === 'bob-waits', 5000, 'waiting')).toMatchObject({ type: 'stream', state: 'waiting' });
    expect(await bob.down.next((m) => m.sessionId === 'bob-waits', 10_000, 'the end of the wait')).toMatchObject({ type: 'bye', reason: 'timeout' });
    expect(tb.bridge.relay.viewers.has('bob/bob-waits')).toBe(false);
  });
});
