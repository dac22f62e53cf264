/**
 * TURN credentials against Debian's coturn (use-auth-secret), on loopback: what the bridge mints is what coturn
 * accepts, past their expiry or under another secret coturn refuses them; devices get theirs in-band and fresh ones
 * before they expire; viewers with their token and their watch answer; relay-only peers really go through TURN;
 * the secret and the passwords never reach a log. The same through network namespaces that let only TURN through:
 * ./netns-relay.test.ts.
 */
import { createHmac } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { RTCPeerConnection } from 'werift';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import type { CameraSession as Session } from '../../src/answerer/session.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { decode, type Answer, type IceServers } from '../../src/protocol/index.ts';
import { TurnCredentials } from '../../src/turn/credentials.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { Coturn, coturnUnavailable } from '../helpers/coturn.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { tryAllocate } from '../../src/turn/allocate.ts';
import { Inbox, waitFor, withTimeout } from '../helpers/wait.ts';

const SECRET = 'turn-test-secret-9f2c';
const unavailable = coturnUnavailable();

function passwordOf(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username).digest('base64');
}

describe('TurnCredentials (TURN REST scheme)', () => {
  it('mints "<expiry>:<identity>" and base64(HMAC-SHA1(secret, user name)), valid for ttlS', () => {
    const now = 1_764_038_401_030;
    const turn = new TurnCredentials({ secret: 'tali-example-secret', urls: ['turn:turn.example.net:3478?transport=udp'], ttlS: 3600, clock: () => now });
    const grant = turn.mint('cam-7f3a2c');
    // The example of docs/protocol.md §5.10, also computed by Python's hmac there.
    expect(grant).toEqual({
      iceServers: [{ urls: ['turn:turn.example.net:3478?transport=udp'], username: '1764042001:cam-7f3a2c', credential: '1qSiOzZ2QPyfV/0iUyOtUn5PI7k=' }],
      expiresAt: 1_764_042_001_000,
    });
  });

  it('never shows its secret, and signs with a rotated one from then on', () => {
    const turn = new TurnCredentials({ secret: 'old-secret', urls: ['turn:t:3478'], ttlS: 60 });
    expect(JSON.stringify(turn)).not.toContain('old-secret');
    expect(JSON.stringify({ turn })).toBe('{"turn":{"urls":["turn:t:3478"],"ttlS":60}}');
    turn.rotate('new-secret');
    const server = turn.mint('cam1').iceServers[0]!;
    expect(server.credential).toBe(passwordOf('new-secret', server.username!));
  });

  it('is configured with turnSecret + turnUrls (both or neither), and errors never echo the secret', () => {
    const config = loadConfig({ overrides: { turnSecret: SECRET, turnUrls: 'turn:a.example:3478?transport=udp, turns:a.example:5349', turnTtlS: 600 } });
    expect(config.turnUrls).toEqual(['turn:a.example:3478?transport=udp', 'turns:a.example:5349']);
    const problems = (overrides: Record<string, unknown>) => {
      try {
        loadConfig({ overrides });
        return [];
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).not.toContain(SECRET);
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ turnSecret: SECRET })).toEqual(['turnSecret: give turnUrls too (the TURN server the credentials are for)']);
    expect(problems({ turnUrls: 'turn:a:3478' })).toEqual(['turnUrls: give turnSecret too (static TURN credentials go in iceServers instead)']);
    expect(problems({ turnSecret: SECRET, turnUrls: 'http://a' })[0]).toMatch(/^turnUrls: must be at most 8 turn: or turns: URLs/);
    expect(problems({ iceTransportPolicy: 'relay' })[0]).toMatch(/^iceTransportPolicy\/relayDevices: relay-only needs a TURN server/);
    expect(problems({ relayDevices: 'cam1', iceServers: '[{"urls":"turn:t:3478","username":"u","credential":"c"}]' })).toEqual([]);
  });
});

describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')(`coturn and the bridge's credentials${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let turn: Coturn;
  beforeAll(async () => {
    if (unavailable) throw new Error(`${unavailable} (CI=true)`);
    turn = await Coturn.start({ address: '127.0.0.1', secrets: [SECRET], allowLoopbackPeers: true });
  });
  afterAll(async () => {
    await turn?.close();
  });

  it('coturn allocates with minted credentials, and refuses them past their expiry or under another secret', async () => {
    const fresh = new TurnCredentials({ secret: SECRET, urls: [turn.url], ttlS: 60 }).mint('cam1').iceServers[0]!;
    expect(await tryAllocate(turn, fresh.username!, fresh.credential!)).toMatchObject({ ok: true });
    // Expired a second ago: the password is right for its user name, the expiry in it is what coturn refuses.
    const expired = new TurnCredentials({ secret: SECRET, urls: [turn.url], ttlS: 1, clock: () => Date.now() - 2000 }).mint('cam1').iceServers[0]!;
    expect(expired.credential).toBe(passwordOf(SECRET, expired.username!));
    expect(await tryAllocate(turn, expired.username!, expired.credential!)).toEqual({ ok: false, code: 401, reason: 'Unauthorized' });
    const foreign = new TurnCredentials({ secret: 'another-secret', urls: [turn.url], ttlS: 60 }).mint('cam1').iceServers[0]!;
    expect(await tryAllocate(turn, foreign.username!, foreign.credential!)).toMatchObject({ ok: false, code: 401 });
  });

  it('allocates again from another client port when coturn still holds the 5-tuple of the first (437)', async () => {
    // The OS hands out ephemeral ports again; coturn keeps a client's session after its allocation is released.
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve));
    const port = socket.address().port;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    const grant = new TurnCredentials({ secret: SECRET, urls: [turn.url], ttlS: 60 }).mint('cam-port').iceServers[0]!;
    expect(await tryAllocate(turn, grant.username!, grant.credential!, 3000, port)).toMatchObject({ ok: true });
    expect(await tryAllocate(turn, grant.username!, grant.credential!, 3000, port)).toMatchObject({ ok: true });
    expect(turn.log.some((line) => /user <\d+:cam-port>.*error 437/.test(line))).toBe(true);
  });

  describe('the bridge', () => {
    let tb: TestBridge;

    async function bridge(config: Record<string, unknown> = {}): Promise<TestBridge> {
      tb = await startBridge({ turnSecret: SECRET, turnUrls: [turn.url], ...config });
      return tb;
    }

    /** The bridge's logs (captured at debug) hold neither the secret nor any password it minted. */
    function noSecretsLogged(minted: string[]): void {
      const text = JSON.stringify(tb.logs);
      expect(text).not.toContain(SECRET);
      for (const password of minted) expect(text).not.toContain(password);
    }

    it('shows no credentials on its card, sends a device its own when its card says online, and fresh ones before they expire', async () => {
      await bridge({ turnTtlS: 3 });
      const watcher = await adminInbox(tb, [tb.bridge.topics.allBridges()]);
      const card = await watcher.next((m) => m.type === 'bridge-status' && m.state === 'online');
      expect(card.iceServersPerDevice).toBe(true);
      expect(JSON.stringify(card)).not.toMatch(/turn:|credential|username/);

      const device = await connectRawDevice(tb, 'mqtt', 'cam-refresh');
      await device.client.publishAsync(device.topics.device('cam-refresh', 'status'), JSON.stringify({ v: 1, type: 'status', ts: Date.now(), state: 'online' }), { qos: 1, retain: true });
      // ttl 3 s: the second comes 1.35–1.5 s after the first (half the lifetime, minus up to 10 % jitter), so its
      // whole-second expiry is later. With ttl 2 s two mints 0.9 s apart could fall in one second (seen 1 in 17 runs).
      const [first, second] = [await device.down.next((m) => m.type === 'ice-servers', 5000), await device.down.next((m) => m.type === 'ice-servers', 5000)].map(
        (json) => decode('down', JSON.stringify(json)) as IceServers,
      ) as [IceServers, IceServers];
      for (const message of [first, second]) {
        const [server] = message.iceServers;
        expect(server?.urls).toEqual([turn.url]);
        expect(server?.username).toBe(`${message.expiresAt / 1000}:cam-refresh`);
        expect(server?.credential).toBe(passwordOf(SECRET, server!.username!));
        expect(message.expiresAt - message.ts).toBeGreaterThan(2000);
        expect(message.expiresAt - message.ts).toBeLessThanOrEqual(3000);
        expect(message.iceTransportPolicy).toBeUndefined();
        expect(await tryAllocate(turn, server!.username!, server!.credential!)).toMatchObject({ ok: true });
      }
      // In-band refresh: the second came while the first was still valid, and lasts longer.
      expect(second.ts).toBeLessThan(first.expiresAt);
      expect(second.expiresAt).toBeGreaterThan(first.expiresAt);
      noSecretsLogged([first, second].map((m) => m.iceServers[0]!.credential!));
    });

    it("uses TURN for its own peers while the TURN server answers, and does not wait for one that does not", async () => {
      await bridge();
      const [camera] = await startCameras(tb, ['cam-answer']);
      const answer = await firstAnswer(camera!);
      expect(answer.sdp).toMatch(/ typ relay /);
      expect(tb.bridge.services.turnProbe?.reachable).toBe(true);
      expect(await metricsOf(tb)).toContain(`tali_turn_reachable{url="${turn.url}"} 1`);

      // A TURN port where nothing listens: werift would hold each answer ~6 s for its allocation.
      const closed = createSocket('udp4');
      await new Promise<void>((resolve) => closed.bind(0, '127.0.0.1', resolve));
      const port = closed.address().port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const other = await startBridge({ turnSecret: SECRET, turnUrls: [`turn:127.0.0.1:${port}?transport=udp`] });
      expect(other.bridge.services.turnProbe?.reachable).toBe(false);
      expect(other.logs.some((r) => r.msg === "TURN server unusable: the bridge's peers go without relay candidates")).toBe(true);
      expect(await metricsOf(other)).toContain(`tali_turn_reachable{url="turn:127.0.0.1:${port}?transport=udp"} 0`);
      const secret = await other.bridge.credentials.add('cam-fast', 'device');
      const fast = new SimulatedCamera({ deviceId: 'cam-fast', secret, connect: nodeConnector(other.bridge.mqttUrl) });
      onTestFinished(() => fast.stop());
      const answered = firstAnswer(fast);
      const opened = waitFor<[Session]>(other.bridge.services.answerer, 'session', () => true, 15_000);
      await fast.start();
      const [fastAnswer, [session]] = await Promise.all([answered, opened]);
      expect(fastAnswer.sdp).not.toMatch(/ typ relay /);
      expect(session.stats.timeline.answer).toBeLessThan(2000);
    });

    it('forces relay for a device of relayDevices: the device is told so, and both ends of its session use TURN', async () => {
      await bridge({ relayDevices: 'cam-relay' });
      const watcher = await adminInbox(tb, [tb.bridge.topics.device('cam-relay', 'metrics')]);
      const cameras = await startCameras(tb, ['cam-relay', 'cam-direct']);
      const [relayed, direct] = await Promise.all(cameras.map((camera) => streaming(tb, camera.deviceId)));
      expect(cameras.map((c) => c.client.iceGrant.config().iceTransportPolicy)).toEqual(['relay', 'all']);
      expect(relayed?.stats.selectedPair).toEqual({ local: 'relay', remote: 'relay', protocol: 'udp' });
      expect(direct?.stats.selectedPair).toMatchObject({ local: 'host' });
      // The device's metrics say so too, and coturn saw the device's own allocation.
      const metrics = await watcher.next((m) => m.selectedPair !== undefined);
      expect(metrics.selectedPair).toEqual({ local: 'relay', remote: 'relay', protocol: 'udp' });
      expect(turn.log.some((line) => /user <\d+:cam-relay>.*ALLOCATE processed, success/.test(line))).toBe(true);
      noSecretsLogged([]);
    });

    it("keeps TURN for a relay-only session while its probe says the TURN server is unusable", async () => {
      // The probe's Allocate at the bridge's start gets no answer (coturn frozen meanwhile), so the bridge's peers go
      // without TURN. A relay-only peer without TURN has no candidate at all: its session timed out after 15 s, which
      // a probe that met a busy event loop or a 5-tuple coturn still held would cause too.
      turn.pause();
      onTestFinished(() => turn.resume());
      await bridge({ relayDevices: 'cam-relay' });
      turn.resume();
      expect(tb.bridge.services.turnProbe?.reachable).toBe(false);
      const cameras = await startCameras(tb, ['cam-relay', 'cam-direct']);
      const [relayed, direct] = await Promise.all(cameras.map((camera) => streaming(tb, camera.deviceId)));
      expect(relayed?.stats.selectedPair).toEqual({ local: 'relay', remote: 'relay', protocol: 'udp' });
      expect(direct?.stats.selectedPair).toMatchObject({ local: 'host' });
    });

    it('gives a viewer its credentials with its token, its watch answer (a password viewer watches again with them) and its WHEP answer', async () => {
      await bridge({ iceTransportPolicy: 'relay' });
      const secret = await tb.bridge.credentials.add('alice', 'viewer');
      const res = await fetch(`http://127.0.0.1:${tb.bridge.httpPort}/api/token`, { method: 'POST', headers: { authorization: `Basic ${btoa(`alice:${secret}`)}` } });
      const reply = (await res.json()) as { token: string; ice: IceServers };
      expect(reply.ice).toMatchObject({ v: 1, type: 'ice-servers', iceTransportPolicy: 'relay' });
      const server = reply.ice.iceServers[0]!;
      expect(server.username).toMatch(/^\d+:alice$/);
      expect(await tryAllocate(turn, server.username!, server.credential!)).toMatchObject({ ok: true });

      await startCameras(tb, ['cam-watched']);
      // With its password (no token), its first watch gathered without TURN; the answer brings credentials.
      const viewer = new NodeViewer({ url: tb.bridge.mqttUrl, user: 'alice', password: secret, deviceId: 'cam-watched', audio: false });
      onTestFinished(() => viewer.stop());
      const watch = await viewer.start();
      await withTimeout(new Promise<void>((resolve) => watch.on('timeline', (t) => t.firstFrame !== undefined && resolve())), 15_000, 'the first frame');
      expect(viewer.summary().attempts).toBe(2);
      expect(viewer.client.iceGrant.valid).toBe(true);
      // The viewer's first frame can come before the worker's 'connected' reaches the main thread (two ways in, read in
      // no set order: test/media/workers.test.ts): the bridge's state is read once brought up to date.
      await tb.bridge.services.media.refresh();
      const served = [...tb.bridge.services.relay.viewers.values()].find((v) => v.sessionId === watch.sessionId);
      expect(served?.selectedPair).toEqual({ local: 'relay', remote: 'relay', protocol: 'udp' });

      // A WHEP player gets its own with its answer, as Link headers (RFC 9725 §4.6).
      const player = new RTCPeerConnection({});
      onTestFinished(() => player.close());
      player.addTransceiver('video', { direction: 'recvonly' });
      await player.setLocalDescription(await player.createOffer());
      const whep = await fetch(`http://127.0.0.1:${tb.bridge.httpPort}/whep/cam-watched`, {
        method: 'POST',
        headers: { authorization: `Bearer ${reply.token}`, 'content-type': 'application/sdp' },
        body: player.localDescription!.sdp,
      });
      expect(whep.status).toBe(201);
      const link = /<(turn:[^>]+)>; rel="ice-server"; username="(\d+:alice)"; credential="([^"]+)"/.exec(whep.headers.get('link') ?? '');
      expect(link?.[1]).toBe(turn.url);
      expect(await tryAllocate(turn, link![2]!, link![3]!)).toMatchObject({ ok: true });
      noSecretsLogged([server.credential!, link![3]!]);
    });
  });
});

/** Simulated cameras on the SDK, registered on the bridge, started, stopped when the test ends. */
async function startCameras(tb: TestBridge, ids: string[]): Promise<SimulatedCamera[]> {
  const cameras: SimulatedCamera[] = [];
  for (const id of ids) {
    const secret = await tb.bridge.credentials.add(id, 'device', { replace: true });
    const camera = new SimulatedCamera({ deviceId: id, secret, connect: nodeConnector(tb.bridge.mqttUrl) });
    onTestFinished(() => camera.stop());
    await camera.start();
    cameras.push(camera);
  }
  return cameras;
}

/** The first answer the camera gets. */
function firstAnswer(camera: SimulatedCamera): Promise<Answer> {
  return withTimeout(new Promise((resolve) => {
    const off = camera.client.on('answer', (answer) => (off(), resolve(answer)));
  }), 15_000, 'an answer');
}

/** The device's session once its media flows on the bridge. */
async function streaming(tb: TestBridge, deviceId: string): Promise<Session> {
  const answerer = tb.bridge.services.answerer;
  const session = answerer.sessions.get(deviceId) ?? (await waitFor(answerer, 'session', (s: Session) => s.deviceId === deviceId, 15_000))[0];
  if (session.state !== 'streaming') await waitFor(session, 'state', (state: string) => state === 'streaming', 15_000);
  return session;
}

/** The bridge's /metrics text. */
async function metricsOf(tb: TestBridge): Promise<string> {
  return (await fetch(`http://127.0.0.1:${tb.bridge.httpPort}/metrics`)).text();
}

/** An admin MQTT client subscribed to `filters` (retained messages included). */
async function adminInbox(tb: TestBridge, filters: string[]): Promise<Inbox> {
  const password = await tb.bridge.credentials.add('ops', 'admin', { replace: true });
  const client = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops', username: 'ops', password });
  onTestFinished(() => client.endAsync(true));
  const inbox = new Inbox(client);
  await client.subscribeAsync(filters, { qos: 1 });
  return inbox;
}
