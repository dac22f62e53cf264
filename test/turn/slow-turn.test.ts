/**
 * A TURN server that does not answer no longer holds up anyone's SDP. Unpatched, werift's setLocalDescription waited
 * for its TURN allocation to fail (6.4 s on loopback, 13 s with an address that drops TCP too), so every werift peer
 * waited that long: the SDK camera before its offer, the Node viewer before its watch, and the bridge before every
 * answer when its TURN server is in iceServers (no probe) or went quiet since the last probe. Now each SDP goes out
 * with its host candidates and the relay candidate, or the end of candidates once the allocation failed, is trickled
 * ([werift-turn-trickle], docs/werift-patches.md). Asserted by order on the wire, not by time: the SDP without
 * `a=end-of-candidates`, then an `endOfCandidates` message on the same topic (MQTT keeps a topic's order).
 *
 * The unanswering server is a bound UDP socket that reads and drops (no public network, no fixed port). With real
 * coturn frozen (SIGSTOP) until the answer is out, relay-only peers on both ends trickle their relay candidates after
 * their SDP and still stream through TURN.
 */
import { createSocket } from 'node:dgram';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import type { CameraSession } from '../../src/answerer/session.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { loadConfig } from '../../src/config/config.ts';
import { connectMqtt } from '../../src/mqtt/connect.ts';
import { NodeViewer } from '../../src/viewer/node-viewer.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { Coturn, coturnUnavailable } from '../helpers/coturn.ts';
import { waitFor, withTimeout } from '../helpers/wait.ts';

const SECRET = 'slow-turn-secret-4d1e';
const unavailable = coturnUnavailable();

/** A UDP port that takes every datagram and answers none; `sources` counts the client ports that sent to it. */
async function silentTurnServer(): Promise<{ url: string; sources: Set<number> }> {
  const socket = createSocket('udp4');
  const sources = new Set<number>();
  socket.on('message', (_data, from) => sources.add(from.port));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { url: `turn:127.0.0.1:${socket.address().port}?transport=udp`, sources };
}

interface Signal {
  /** The filter of tap() it came in on. */
  topic: string;
  type: string;
  sdp?: string;
  candidate?: string;
  endOfCandidates?: boolean;
}

/** Every signaling message on `filters` (`+` matches one level), in arrival order, seen by an admin MQTT client. */
async function tap(tb: TestBridge, filters: string[]): Promise<{ log: Signal[]; until: (match: (log: Signal[]) => boolean, what: string) => Promise<void> }> {
  const password = await tb.bridge.credentials.add('ops', 'admin', { replace: true });
  const client = await connectMqtt({ target: tb.bridge.mqttUrl, clientId: 'ops', username: 'ops', password });
  onTestFinished(() => client.endAsync(true));
  const log: Signal[] = [];
  const waiters = new Set<() => void>();
  const patterns = filters.map((filter) => [filter, new RegExp(`^${filter.replace(/\+/g, '[^/]+')}$`)] as const);
  client.on('message', (topic, payload) => {
    const filter = patterns.find(([, pattern]) => pattern.test(topic))?.[0] ?? topic;
    log.push({ ...(JSON.parse(payload.toString()) as Omit<Signal, 'topic'>), topic: filter });
    for (const wake of waiters) wake();
  });
  await client.subscribeAsync(filters, { qos: 1 });
  const until = (match: (log: Signal[]) => boolean, what: string) =>
    withTimeout(
      new Promise<void>((resolve) => {
        const wake = () => match(log) && (waiters.delete(wake), resolve());
        waiters.add(wake);
        wake();
      }),
      30_000,
      what,
    );
  return { log, until };
}

/** Index in `log` of the first message on `topic` matching `match`, -1 if none. */
function indexOf(log: Signal[], topic: string, match: (s: Signal) => boolean): number {
  return log.findIndex((s) => s.topic === topic && match(s));
}

const isEnd = (s: Signal) => s.type === 'candidate' && s.endOfCandidates === true;

async function registerCamera(tb: TestBridge, id: string): Promise<SimulatedCamera> {
  const secret = await tb.bridge.credentials.add(id, 'device', { replace: true });
  const camera = new SimulatedCamera({ deviceId: id, secret, connect: nodeConnector(tb.bridge.mqttUrl) });
  onTestFinished(() => camera.stop());
  return camera;
}

async function streaming(tb: TestBridge, deviceId: string): Promise<CameraSession> {
  const answerer = tb.bridge.services.answerer;
  const session = answerer.sessions.get(deviceId) ?? (await waitFor(answerer, 'session', (s: CameraSession) => s.deviceId === deviceId, 20_000))[0];
  if (session.state !== 'streaming') await waitFor(session, 'state', (state: string) => state === 'streaming', 20_000);
  return session;
}

describe('a TURN server that does not answer', () => {
  it('bounds the wait of an answer for its relay candidate with turnAnswerWaitMs (ms, default 1000, 0 to 15000)', () => {
    expect(loadConfig({}).turnAnswerWaitMs).toBe(1000);
    expect(loadConfig({ flags: { turnAnswerWaitMs: '0' } }).turnAnswerWaitMs).toBe(0);
    expect(() => loadConfig({ flags: { turnAnswerWaitMs: '15001' } })).toThrow(/turnAnswerWaitMs: must be an integer from 0 to 15000/);
  });

  it('holds up no SDP: the SDK camera, the bridge and the Node viewer send theirs before their allocation ended, and stream', { timeout: 60_000 }, async () => {
    const turn = await silentTurnServer();
    // In iceServers (not turnSecret): no probe, every peer gathers with it, the bridge's own for camera and viewer too.
    const tb = await startBridge({ iceServers: JSON.stringify([{ urls: turn.url, username: 'u', credential: 'p' }]) });
    const { topics } = tb.bridge;
    const camUp = topics.device('cam-silent', 'up');
    const camDown = topics.device('cam-silent', 'down');
    const viewerUp = topics.viewerConnections('alice', 'up');
    const viewerDown = topics.viewerConnections('alice', 'down');
    const wire = await tap(tb, [camUp, camDown, viewerUp, viewerDown]);

    const camera = await registerCamera(tb, 'cam-silent');
    await camera.start();
    await streaming(tb, 'cam-silent');
    const secret = await tb.bridge.credentials.add('alice', 'viewer');
    const viewer = new NodeViewer({ url: tb.bridge.mqttUrl, user: 'alice', password: secret, deviceId: 'cam-silent', audio: false });
    onTestFinished(() => viewer.stop());
    const watch = await viewer.start();
    await withTimeout(new Promise<void>((resolve) => watch.on('timeline', (t) => t.firstFrame !== undefined && resolve())), 20_000, 'the first frame');

    const sdps = [[camUp, 'offer'], [camDown, 'answer'], [viewerUp, 'watch'], [viewerDown, 'answer']] as const;
    for (const [topic, type] of sdps) {
      const sdp = wire.log[indexOf(wire.log, topic, (s) => s.type === type)]?.sdp ?? '';
      expect(sdp, `${type} on ${topic}`).toMatch(/ typ host/);
      expect(sdp, `${type} on ${topic}`).not.toMatch(/a=end-of-candidates/); // unpatched: there, after the allocation failed
      const trickled = wire.log.filter((s) => s.topic === topic && s.candidate !== undefined);
      for (const { candidate } of trickled) expect(sdp, 'a candidate trickled again').not.toContain(`a=${candidate}\r\n`);
    }
    // Each peer ends its candidates once its allocation failed: after its SDP, on the same topic, once.
    await Promise.all(sdps.map(([topic]) => wire.until((log) => indexOf(log, topic, isEnd) !== -1, `endOfCandidates on ${topic}`)));
    for (const [topic, type] of sdps) {
      expect(indexOf(wire.log, topic, isEnd), `endOfCandidates after the ${type} on ${topic}`).toBeGreaterThan(indexOf(wire.log, topic, (s) => s.type === type));
      expect(wire.log.filter((s) => s.topic === topic && isEnd(s))).toHaveLength(1);
    }
    // The bridge's two peers, the camera and the viewer each asked the silent server for an allocation.
    expect(turn.sources.size).toBeGreaterThanOrEqual(4);
  });
});

describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')(`coturn answering late${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it('relay-only peers on both ends trickle their relay candidates after their SDP and stream through TURN', { timeout: 60_000 }, async () => {
    if (unavailable) throw new Error(`${unavailable} (CI=true)`);
    const coturn = await Coturn.start({ address: '127.0.0.1', secrets: [SECRET], allowLoopbackPeers: true });
    onTestFinished(() => coturn.close());
    const tb = await startBridge({ turnSecret: SECRET, turnUrls: [coturn.url], relayDevices: 'cam-late', turnAnswerWaitMs: 200 });
    expect(tb.bridge.services.turnProbe?.reachable).toBe(true);
    const up = tb.bridge.topics.device('cam-late', 'up');
    const down = tb.bridge.topics.device('cam-late', 'down');
    const wire = await tap(tb, [up, down]);

    // Frozen until the answer is out: neither end's allocation can complete before its SDP is sent.
    coturn.pause();
    onTestFinished(() => coturn.resume());
    const camera = await registerCamera(tb, 'cam-late');
    await camera.start();
    await wire.until((log) => indexOf(log, down, (s) => s.type === 'answer') !== -1, 'the answer');
    coturn.resume();
    const session = await streaming(tb, 'cam-late');
    expect(session.stats.selectedPair).toEqual({ local: 'relay', remote: 'relay', protocol: 'udp' });

    const log = wire.log;
    for (const [topic, type] of [[up, 'offer'], [down, 'answer']] as const) {
      const sdpAt = indexOf(log, topic, (s) => s.type === type);
      expect(log[sdpAt]?.sdp, `${type}`).not.toMatch(/ typ relay|a=end-of-candidates/);
      const relayAt = indexOf(log, topic, (s) => / typ relay/.test(s.candidate ?? ''));
      expect(relayAt, `a relay candidate trickled after the ${type}`).toBeGreaterThan(sdpAt);
    }
  });
});
