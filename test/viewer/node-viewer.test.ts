/**
 * The viewer SDK end to end in Node: a werift viewer (NodeViewer, `tali watch`) watches a simulated camera through a
 * real bridge over MQTT/TCP and MQTT/WebSocket; it gets video from a keyframe on, hears the stream state, watches
 * again after losing its MQTT connection, and says bye when it stops.
 */
import type { MqttClient } from 'mqtt';
import { describe, expect, it, onTestFinished } from 'vitest';
import { runWatch } from '../../src/cli/watch.ts';
import { ConnectRefusedError } from '../../src/client/mqtt-link.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { ViewerClient } from '../../src/viewer/viewer-client.ts';
import { WeriftViewerPeer } from '../../src/webrtc/werift-viewer-peer.ts';
import { FAST_BACKOFF, next, register, startCamera } from '../devices/helpers.ts';
import { startBridge, TRANSPORTS, type TestBridge, type Transport } from '../helpers/bridge.ts';
import { explained } from '../helpers/media-state.ts';
import { until, withTimeout } from '../helpers/wait.ts';

async function nodeViewer(tb: TestBridge, transport: Transport, deviceId = 'cam1', user = 'alice'): Promise<NodeViewer> {
  const password = await tb.bridge.credentials.add(user, 'viewer', { replace: true });
  const viewer = new NodeViewer({ url: tb.urlFor(transport), user, password, deviceId, backoff: FAST_BACKOFF });
  onTestFinished(() => viewer.stop());
  return viewer;
}

/** Video from a keyframe on: at least `packets` video packets and one keyframe. */
function hasVideo(viewer: NodeViewer, packets = 20): () => boolean {
  return () => {
    const video = viewer.summary().tracks.find((t) => t.kind === 'video');
    return video !== undefined && video.packets >= packets && video.keyframes >= 1;
  };
}

/**
 * The dashboard's way to log in with short-lived tokens: the password once for a first token (POST /api/token), then
 * each token buys the next. `ttlS(n)` is the lifetime of the n-th token (from 0); `issued` says when each came and
 * when it ends (whole seconds, so a token of 8 s has 7–8 s left when issued).
 */
function tokenProvider(tb: TestBridge, user: string, password: string, ttlS: (n: number) => number) {
  const api = `http://127.0.0.1:${tb.bridge.httpPort}/api/token`;
  const issued: { at: number; expiresAt: number }[] = [];
  let token: string | undefined;
  const credential = async () => {
    // An expired token buys nothing: the password again then, as signing in again would.
    const bearer = token !== undefined && Date.now() < issued.at(-1)!.expiresAt;
    const authorization = bearer ? `Bearer ${token}` : `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
    const res = await fetch(api, { method: 'POST', headers: { authorization }, body: JSON.stringify({ ttlS: ttlS(issued.length) }) });
    const body = (await res.json()) as { token: string; expiresAt: string };
    token = body.token;
    issued.push({ at: Date.now(), expiresAt: Date.parse(body.expiresAt) });
    return { secret: body.token, expiresAt: Date.parse(body.expiresAt) };
  };
  return { credential, issued };
}

/** What the client says of its connection, in order: lost, made again, refreshed by a handover, warnings. */
function connectionEvents(client: ViewerClient): string[] {
  const events: string[] = [];
  client.on('disconnected', (err) => events.push(`disconnected: ${err?.message}`));
  client.on('connected', ({ reconnect }) => events.push(`connected (reconnect: ${reconnect})`));
  client.on('refreshed', () => events.push('refreshed'));
  client.on('warning', (w) => events.push(`warning: ${w}`));
  return events;
}

/**
 * Holds the first `stream` that reaches `client` until `release` settles, and with it everything after it (mqtt.js
 * reads one packet at a time): on a token refresh's new connection, the bridge's answer to an adopt, so the bridge has
 * moved the session while the client is still waiting to hear so. customHandleAcks is mqtt.js's hook that runs before
 * a QoS 1 PUBLISH is emitted; resolves once it holds one.
 */
function holdFirstStream(client: MqttClient, release: Promise<void>): Promise<void> {
  return new Promise((held) => {
    let holding = false;
    client.options.customHandleAcks = (_topic, payload, _packet, done) => {
      if (holding || (JSON.parse(payload.toString()) as { type?: string }).type !== 'stream') return done(0);
      holding = true;
      held();
      void release.then(() => done(0));
    };
  });
}

/**
 * A viewer with short-lived tokens whose first token expires in the middle of its refresh: the refresh's connection
 * is subscribed and has sent `adopt`, the bridge has moved the session to it, but the client has not read the bridge's
 * answer yet (held until `release`). Meanwhile the broker closed the expired connection and the bridge handled its
 * `leave`. `events` and `states` (of the watch) are recorded from before the refresh; `retries` from the start.
 */
async function oldTokenExpiresMidHandover(transport: Transport, user: string) {
  const tb = await startBridge();
  const camera = await startCamera(tb, transport);
  const password = await tb.bridge.credentials.add(user, 'viewer', { replace: true });
  // A first token of 8 s (refreshed ~3 s before its end), then tokens that outlive the test.
  const { credential, issued } = tokenProvider(tb, user, password, (n) => (n === 0 ? 8 : 600));
  const connect = nodeConnector(tb.urlFor(transport));
  const clients: MqttClient[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  onTestFinished(release);
  let held!: () => void;
  const adoptAnswerHeld = new Promise<void>((resolve) => (held = resolve));
  const client = new ViewerClient({ user, password: credential, backoff: FAST_BACKOFF, connect: (o) => {
    const c = connect(o);
    // The second connection is the refresh's: the bridge's answer to its adopt waits until the first one is gone.
    if (clients.push(c) === 2) void holdFirstStream(c, released).then(held);
    return c;
  } });
  onTestFinished(() => client.stop());
  await client.start();
  const first = clients[0]!;
  const firstClosed = new Promise<void>((resolve) => first.once('close', () => resolve()));
  const events = connectionEvents(client);
  const peers: WeriftViewerPeer[] = [];
  const watch = client.watch('cam1', (iceServers) => peers[peers.push(new WeriftViewerPeer({ iceServers })) - 1]!);
  const retries: string[] = [];
  watch.on('retry', ({ reason }) => retries.push(reason));
  await next(watch, 'state', (s) => s === 'connected', 10_000);
  const video = () => peers[0]?.tracks.get('video')?.packets ?? 0;
  await until(() => video() > 0, 10_000, 'first video');
  const states: string[] = [];
  watch.on('state', (s) => states.push(s));
  const sessionId = watch.sessionId;
  const session = tb.bridge.relay.viewers.get(`${user}/${sessionId}`)!;
  const firstOwner = session.owner;

  await withTimeout(adoptAnswerHeld, 20_000, "the refresh's connection to get the bridge's answer to its adopt");
  expect(session.owner.key).not.toBe(firstOwner.key);
  expect(first.connected, 'the first token expired before the refresh had adopted: a stalled machine').toBe(true);
  // The first token expires: the broker closes that connection and publishes its will (`leave`), which the bridge
  // has handled once the session no longer counts the old connection as an owner.
  await withTimeout(firstClosed, issued[0]!.expiresAt - Date.now() + 5000, 'the broker to close the expired connection');
  await until(() => !session.ownedBy(firstOwner), 5000, "the bridge to handle the old connection's leave");
  expect(client.connected).toBe(true);
  return { tb, camera, client, clients, watch, sessionId, session, peers, video, events, states, retries, release };
}

describe.each(TRANSPORTS)('node viewer over %s', (transport) => {
  it.each(['VP8', 'H264'] as const)('watches a streaming %s camera: video from a keyframe, stream live, timeline in order', async (codec) => {
    const tb = await startBridge();
    await startCamera(tb, transport, { codec, audio: 'PCMU' });
    const viewer = await nodeViewer(tb, transport);
    const watch = await viewer.start();
    await next(watch, 'stream', (state) => state === 'live');
    await until(hasVideo(viewer), 10_000, 'video with a keyframe');

    const summary = viewer.summary();
    expect(summary).toMatchObject({ deviceId: 'cam1', state: 'connected', stream: 'live', attempts: 1 });
    expect(summary.tracks.find((t) => t.kind === 'video')?.codec).toBe(codec);
    const { watchSent, answer, connected, firstRtp, firstFrame } = summary.timeline;
    for (const t of [watchSent, answer, connected, firstRtp, firstFrame]) expect(t).toBeGreaterThanOrEqual(0);
    expect(watchSent!).toBeLessThanOrEqual(answer!);
    expect(answer!).toBeLessThanOrEqual(connected!);
    expect(connected!).toBeLessThanOrEqual(firstFrame!);

    const gone = until(() => tb.bridge.relay.viewers.size === 0, 5000, 'the bridge to close the viewer session');
    await viewer.stop();
    await gone; // the viewer said bye
  });

  it("the camera's retained metrics count its viewers, one publisher for the whole message", async () => {
    const tb = await startBridge();
    await startCamera(tb, transport);
    const viewer = await nodeViewer(tb, transport);
    // The viewer count rides on the session's timeline message: one message carries both.
    const counted = next(viewer.client, 'device', (id, e) => id === 'cam1' && e?.metrics?.viewers === 1 && e.metrics.state === 'streaming');
    await viewer.start();
    const [, entry] = await counted;
    expect(entry?.metrics?.timeline.connected).toBeGreaterThan(0);
    const other = await nodeViewer(tb, transport, 'cam1', 'bob');
    await other.start();
    await next(other.client, 'device', (id, e) => id === 'cam1' && e?.metrics?.viewers === 2);
    const oneLeft = next(other.client, 'device', (id, e) => id === 'cam1' && e?.metrics?.viewers === 1);
    await viewer.stop();
    await oneLeft;
  });

  it('watching an idle camera: waiting, then live once the camera starts', async () => {
    const tb = await startBridge();
    await register(tb, 'cam2'); // known to the bridge, not connected yet
    const viewer = await nodeViewer(tb, transport, 'cam2');
    const watch = await viewer.start();
    await next(watch, 'stream', (state) => state === 'waiting');
    expect(watch.state).toBe('waiting');
    await startCamera(tb, transport, { deviceId: 'cam2' });
    await next(watch, 'stream', (state) => state === 'live');
    await until(hasVideo(viewer), 10_000, 'video after the camera started');
    expect(watch.timeline.waiting).toBeLessThan(watch.timeline.answer!);
  });

  it('after losing its MQTT connection it watches again (new session) and video resumes', async () => {
    const tb = await startBridge();
    await startCamera(tb, transport);
    const password = await tb.bridge.credentials.add('bob', 'viewer', { replace: true });
    const clients: MqttClient[] = [];
    const connect = nodeConnector(tb.urlFor(transport));
    const client = new ViewerClient({ user: 'bob', password, backoff: FAST_BACKOFF, connect: (o) => clients[clients.push(connect(o)) - 1]! });
    onTestFinished(() => client.stop());
    await client.start();
    const peers: WeriftViewerPeer[] = [];
    const watch = client.watch('cam1', (iceServers) => peers[peers.push(new WeriftViewerPeer({ iceServers })) - 1]!);
    await next(watch, 'state', (s) => s === 'connected');
    await until(() => (peers[0]?.tracks.get('video')?.keyframes ?? 0) > 0, 10_000, 'first video');
    const firstSession = watch.sessionId;

    const reconnected = next(client, 'connected', ({ reconnect }) => reconnect);
    clients[0]!.stream.destroy(); // an unclean loss: the broker publishes our will, `leave`
    await reconnected;
    await next(watch, 'state', (s) => s === 'connected');
    expect(watch.sessionId).not.toBe(firstSession);
    await until(() => (peers[1]?.tracks.get('video')?.keyframes ?? 0) > 0, 10_000, 'video on the new session');
    expect(peers[0]?.state).toBe('closed');
  });

  it("one connection of a user dropping ends only that connection's sessions (its will names it)", async () => {
    const tb = await startBridge();
    await startCamera(tb, transport);
    const password = await tb.bridge.credentials.add('erin', 'viewer', { replace: true });
    const connect = nodeConnector(tb.urlFor(transport));
    const firstClients: MqttClient[] = [];
    const tabs = [0, 1].map((tab) => {
      const client = new ViewerClient({ user: 'erin', password, backoff: { initialMs: 60_000, maxMs: 60_000 }, connect: (o) => {
        const c = connect(o);
        if (tab === 0) firstClients.push(c);
        return c;
      } });
      onTestFinished(() => client.stop());
      return client;
    });
    await Promise.all(tabs.map((t) => t.start()));
    const watches = tabs.map((t) => t.watch('cam1', (iceServers) => new WeriftViewerPeer({ iceServers })));
    await Promise.all(watches.map((w) => next(w, 'state', (s) => s === 'connected')));
    const second = tb.bridge.relay.viewers.get(`erin/${watches[1]!.sessionId}`)!;
    const closedFirst = until(() => !tb.bridge.relay.viewers.has(`erin/${watches[0]!.sessionId}`), 5000, "the first tab's session to end");

    firstClients[0]!.stream.destroy(); // tab 0 vanishes: the broker publishes its will, naming its connection
    await closedFirst;
    // The other tab's session is untouched (the bridge side may still be finishing its DTLS handshake).
    expect(tb.bridge.relay.viewers.get(`erin/${watches[1]!.sessionId}`)).toBe(second);
    expect(second.state).not.toBe('closed');
    expect(watches[1]!.state).toBe('connected');
  });

  it('with short-lived tokens it adopts its watch on each fresh connection: two token lifetimes, one session, zero re-watches', { timeout: 60_000 }, async () => {
    const tb = await startBridge();
    const camera = await startCamera(tb, transport);
    const password = await tb.bridge.credentials.add('frank', 'viewer', { replace: true });
    // Tokens of 8 s: the switch at 80 % leaves about 1.5 s of margin on a busy machine.
    const { credential, issued } = tokenProvider(tb, 'frank', password, () => 8);
    const client = new ViewerClient({ user: 'frank', password: credential, backoff: FAST_BACKOFF, connect: nodeConnector(tb.urlFor(transport)) });
    onTestFinished(() => client.stop());
    const watches: string[] = [];
    tb.bridge.relay.on('viewer', (v) => watches.push(v.sessionId));
    // What a lost connection or a failed refresh says (neither is a watch 'retry'), ms after the first token.
    const events: string[] = [];
    const at = () => Date.now() - (issued[0]?.at ?? Date.now());
    client.on('warning', (w) => events.push(`${at()} warning: ${w}`));
    client.on('disconnected', (err) => events.push(`${at()} disconnected: ${err?.message}`));
    await client.start();
    let peer: WeriftViewerPeer | undefined;
    const watch = client.watch('cam1', (iceServers) => (peer = new WeriftViewerPeer({ iceServers })));
    const retries: string[] = [];
    watch.on('retry', ({ reason }) => retries.push(reason));
    await next(watch, 'state', (s) => s === 'connected', 10_000);
    const sessionId = watch.sessionId;
    const session = tb.bridge.relay.viewers.get(`frank/${sessionId}`)!;
    const owners = [session.owner.key];
    const video = () => peer?.tracks.get('video')?.packets ?? 0;

    // How long before the old token's expiry each handover (token request → adopt confirmed) was done.
    const margins: number[] = [];
    for (const lifetime of [0, 1]) {
      await next(client, 'refreshed', () => true, 12_000);
      margins.push(issued[lifetime]!.expiresAt - Date.now());
      console.info(JSON.stringify({ handoverMarginMs: margins, retries }));
      owners.push(session.owner.key);
      // Past this token's expiry (when the broker closes whatever still uses it): video still arriving.
      const expiry = issued[lifetime]!.at + 8000;
      await until(() => Date.now() > expiry, 10_000, `token ${lifetime + 1}'s expiry`);
      const before = video();
      // Seen under heavy load only (full suites beside benches, over ws): say which side stopped.
      const sides = () => ({
        margins, retries, events, now: at(), watch: watch.state, watches, owners: [...owners, session.owner.key], before, packets: video(), peer: peer?.state,
        camera: { packetsSent: camera.video.packetsSent, sessions: camera.keeper.counters.opened },
      });
      await explained(tb, until(() => video() > before + 10, 5000, `video still arriving after token ${lifetime + 1} expired`), sides);
    }
    // The same watch, the same session on the bridge, owned by each new connection in turn; never watched again.
    expect(issued.length).toBeGreaterThanOrEqual(3);
    expect(watch.sessionId).toBe(sessionId);
    expect(watch.state).toBe('connected');
    expect(retries).toEqual([]);
    expect(watches).toEqual([sessionId]);
    expect(tb.bridge.relay.viewers.get(`frank/${sessionId}`)).toBe(session);
    expect(session.state).toBe('connected');
    expect(new Set(owners).size).toBe(3);
  });

  it('when the old token expires mid-handover (adopted, not yet confirmed) the new connection takes over: same session, no re-watch', { timeout: 60_000 }, async () => {
    const scene = await oldTokenExpiresMidHandover(transport, 'grace');
    const { tb, watch, sessionId, session, events, retries, states, clients, peers, video } = scene;
    scene.release();
    await until(() => events.some((e) => e === 'refreshed' || e.startsWith('disconnected')), 10_000, 'the handover to end');

    // The new connection simply became the connection: the same session, never watched again, and video goes on.
    expect({ events, sessionId: watch.sessionId, retries, states, onBridge: [...tb.bridge.relay.viewers.keys()], session: session.state, owner: session.owner.key }).toEqual({
      events: ['refreshed'], sessionId, retries: [], states: [], onBridge: [`grace/${sessionId}`], session: 'connected', owner: `mqtt:grace/${clients[1]!.options.clientId}`,
    });
    const before = video();
    const sides = () => ({ before, packets: video(), peer: peers[0]?.state, watch: watch.state, camera: { packetsSent: scene.camera.video.packetsSent, sessions: scene.camera.keeper.counters.opened } });
    await explained(tb, until(() => video() > before + 10, 5000, 'video after the old connection is gone'), sides);
    expect(peers).toHaveLength(1);
    expect(clients).toHaveLength(2);
  });

  it('when the old token expires mid-handover and the new connection then fails too, the connection is lost: reconnect, watch again', { timeout: 60_000 }, async () => {
    const { tb, client, watch, sessionId, events, clients, peers } = await oldTokenExpiresMidHandover(transport, 'ivan');
    const reconnected = next(client, 'connected', ({ reconnect }) => reconnect, 10_000);
    clients[1]!.stream.destroy(); // the broker publishes its will: the session it adopted ends
    await reconnected;
    await next(watch, 'state', (s) => s === 'connected', 15_000);
    expect(events).toEqual(['disconnected: connection lost', 'connected (reconnect: true)']);
    expect(watch.sessionId).not.toBe(sessionId);
    expect(clients).toHaveLength(3);
    expect([...tb.bridge.relay.viewers.keys()]).toEqual([`ivan/${watch.sessionId}`]);
    await until(() => (peers[1]?.tracks.get('video')?.packets ?? 0) > 10, 10_000, 'video on the new session');
  });

  it('when the old token expires while the refresh waits for its new token, it reconnects and watches again; the late token opens nothing', { timeout: 60_000 }, async () => {
    const tb = await startBridge();
    await startCamera(tb, transport);
    const password = await tb.bridge.credentials.add('heidi', 'viewer', { replace: true });
    const tokens = tokenProvider(tb, 'heidi', password, (n) => (n === 0 ? 8 : 600));
    // The refresh's token request (the second) is answered only once the first connection is gone and replaced.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    onTestFinished(release);
    let asked!: () => void;
    const refreshAsked = new Promise<void>((resolve) => (asked = resolve));
    let taken!: () => void;
    const lateTokenTaken = new Promise<void>((resolve) => (taken = resolve));
    let calls = 0;
    const credential = async () => {
      if (++calls !== 2) return tokens.credential();
      asked();
      await released;
      const answer = tokens.credential();
      // Once the client's continuations of this answer have run (they are microtasks; an immediate comes after them).
      void answer.then(() => setImmediate(taken));
      return answer;
    };
    const connect = nodeConnector(tb.urlFor(transport));
    const clients: MqttClient[] = [];
    const client = new ViewerClient({ user: 'heidi', password: credential, backoff: FAST_BACKOFF, connect: (o) => clients[clients.push(connect(o)) - 1]! });
    onTestFinished(() => client.stop());
    await client.start();
    const firstClosed = new Promise<void>((resolve) => clients[0]!.once('close', () => resolve()));
    const events = connectionEvents(client);
    const peers: WeriftViewerPeer[] = [];
    const watch = client.watch('cam1', (iceServers) => peers[peers.push(new WeriftViewerPeer({ iceServers })) - 1]!);
    await next(watch, 'state', (s) => s === 'connected', 10_000);
    const sessionId = watch.sessionId;

    await withTimeout(refreshAsked, 12_000, 'the refresh to ask for a token');
    // No handover has begun, so nothing adopted the session: it ends with the expired connection (protocol §16.3),
    // and the client watches again over the connection it makes with a login of its own.
    await withTimeout(firstClosed, tokens.issued[0]!.expiresAt - Date.now() + 5000, 'the broker to close the expired connection');
    await next(watch, 'state', (s) => s === 'connected', 15_000);
    expect(watch.sessionId).not.toBe(sessionId);
    release();
    await withTimeout(lateTokenTaken, 10_000, 'the late token');
    expect(events).toEqual(['disconnected: connection lost', 'connected (reconnect: true)']);
    expect(clients).toHaveLength(2);
    expect([...tb.bridge.relay.viewers.keys()]).toEqual([`heidi/${watch.sessionId}`]);
    await until(() => (peers[1]?.tracks.get('video')?.packets ?? 0) > 10, 10_000, 'video on the new session');
  });

  it('a wrong password is refused once, without retrying', async () => {
    const tb = await startBridge();
    await tb.bridge.credentials.add('carol', 'viewer', { replace: true });
    const client = new ViewerClient({ user: 'carol', password: 'wrong', connect: nodeConnector(tb.urlFor(transport)), backoff: FAST_BACKOFF });
    onTestFinished(() => client.stop());
    const failure = await client.start().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConnectRefusedError);
    expect((failure as Error).message).toContain('viewer "carol"');
  });
});

describe('tali watch', () => {
  it('prints one JSON line with packets, keyframes and the first-frame timeline', async () => {
    const tb = await startBridge();
    await startCamera(tb, 'mqtt', { codec: 'H264' });
    const password = await tb.bridge.credentials.add('dave', 'viewer', { replace: true });
    let stdout = '';
    let stderr = '';
    const io = { stdout: { write: (t: string) => void (stdout += t) }, stderr: { write: (t: string) => void (stderr += t) }, env: { TALI_PASSWORD: password } };
    const code = await runWatch(['--url', tb.urlFor('ws'), '--user', 'dave', '--device', 'cam1', '--duration', '2'], io as never);
    expect(code, stderr).toBe(0);
    const lines = stdout.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    const summary = JSON.parse(lines[0]!) as ReturnType<NodeViewer['summary']>;
    expect(summary.packets).toBeGreaterThan(0);
    expect(summary.keyframes).toBeGreaterThan(0);
    expect(summary.timeline.firstFrame).toBeGreaterThan(0);
    expect(summary.tracks.find((t) => t.kind === 'video')?.codec).toBe('H264');
  });

  it('usage errors exit 2', async () => {
    let stderr = '';
    const io = { stdout: { write: () => {} }, stderr: { write: (t: string) => void (stderr += t) }, env: {} };
    expect(await runWatch(['--user', 'x'], io as never)).toBe(2);
    expect(stderr).toContain('--device is required');
  });
});
