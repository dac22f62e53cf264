/**
 * Behind a firewall that lets through only MQTT and TURN: a camera and a viewer, each in its own network namespace
 * (test/netlink/netns.ts) whose link to this host drops every packet that is not to or from the bridge's MQTT and
 * HTTP ports or coturn's port. The bridge's media addresses are out of reach, so only relayed candidates can work.
 * Debian's coturn (use-auth-secret, secrets in its SQLite database) relays; the bridge mints the credentials.
 *
 *   camera ns ──┐ firewall: MQTT, HTTP, TURN only                  host: bridge (media on every host address),
 *   viewer ns ──┘──────────────────────────────────────────────►  coturn on the camera link's host-side address
 *
 * One session of each, kept through the whole suite: it streams through TURN, the device gets fresh credentials
 * in-band before its first ones expire and its session outlives them, and a rotated secret keeps both sessions up
 * while new sessions use credentials signed with the new secret.
 */
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/answerer/session.ts';
import type { ViewerSession } from '../../src/relay/viewer.ts';
import { TurnCredentials } from '../../src/turn/credentials.ts';
import { createBridge, type TestBridge } from '../helpers/bridge.ts';
import { Coturn, coturnUnavailable } from '../helpers/coturn.ts';
import { tryAllocate } from '../../src/turn/allocate.ts';
import { waitFor, withTimeout } from '../helpers/wait.ts';
import { NetHost, netHostUnavailable } from '../netlink/netns.ts';

const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const CAMERA = fileURLToPath(new URL('./netns-camera.ts', import.meta.url));
const VIEWER = fileURLToPath(new URL('./netns-viewer.ts', import.meta.url));
const SECRET = 'netns-secret-1';
const ROTATED = 'netns-secret-2';
/** Short, so the suite sees credentials expire and get replaced: devices get fresh ones every ~2 s. */
const TTL_S = 4;
/** coturn's log line for an allocation refreshed with the credentials it was made with. */
const REFRESHED = /REFRESH processed, success/;

const unavailable = netHostUnavailable() ?? coturnUnavailable();

/** A process in a namespace that prints one JSON object per line. */
class Peer {
  readonly lines: Record<string, unknown>[] = [];
  readonly #waiters = new Set<() => void>();
  readonly child: ChildProcess;

  constructor(child: ChildProcess) {
    this.child = child;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
      for (const wake of this.#waiters) wake();
    });
    child.once('exit', () => {
      for (const wake of this.#waiters) wake();
    });
  }

  /** The first line (seen or to come) after `from` that matches. */
  next(match: (line: Record<string, unknown>) => boolean, ms: number, what: string, from = 0): Promise<Record<string, unknown>> {
    let wake!: () => void;
    const found = new Promise<Record<string, unknown>>((resolve, reject) => {
      wake = () => {
        const line = this.lines.slice(from).find(match);
        if (line) resolve(line);
        else if (this.child.exitCode !== null) reject(new Error(`${what}: the process exited (${this.child.exitCode})`));
      };
      this.#waiters.add(wake);
      wake();
    });
    return withTimeout(found, ms, what).finally(() => this.#waiters.delete(wake));
  }

  events(name: string): Record<string, unknown>[] {
    return this.lines.filter((l) => l.event === name);
  }
}

describe.skipIf(unavailable !== undefined && process.env.CI !== 'true')(`cameras and viewers that reach only TURN${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let cameraHost: NetHost;
  let viewerHost: NetHost;
  let turn: Coturn;
  let tb: TestBridge & { close: () => Promise<void> };
  let camera: Peer;
  let viewer: Peer;
  let cameraSession: Session;
  let viewerSession: ViewerSession;

  beforeAll(async () => {
    if (unavailable) throw new Error(`${unavailable} (CI=true)`);
    cameraHost = await NetHost.create();
    viewerHost = await NetHost.create();
    // Allocations last 6 s: coturn sees the clients refresh them (5/6 of it) while the suite runs.
    turn = await Coturn.start({ address: cameraHost.gateway, secrets: [SECRET], maxAllocateLifetimeS: 6 });
    // mediaWorkers 1: the test reads the camera session's RTP, which stays on the thread of its peer.
    tb = await createBridge({ mediaWorkers: 1, host: cameraHost.gateway, turnSecret: SECRET, turnUrls: [turn.url], turnTtlS: TTL_S });
    const open = [turn.port, tb.bridge.mqttPort, tb.bridge.httpPort].map((port) => ({ address: cameraHost.gateway, port }));
    await cameraHost.allowOnly(open);
    await viewerHost.allowOnly(open);
  });
  afterAll(async () => {
    for (const peer of [camera, viewer]) peer?.child.stdin?.end();
    await Promise.all([cameraHost?.close(), viewerHost?.close()]);
    await tb?.close();
    await turn?.close();
  });

  it('a camera streams and a viewer watches, both over relayed pairs, the direct paths blocked', async () => {
    const secret = await tb.bridge.credentials.add('cam-nat', 'device');
    const answerer = tb.bridge.services.answerer;
    const opened = waitFor(answerer, 'session', (s: Session) => s.deviceId === 'cam-nat', 20_000);
    camera = new Peer(
      cameraHost.spawn(NODE, [CAMERA, JSON.stringify({ url: `mqtt://${cameraHost.gateway}:${tb.bridge.mqttPort}`, id: 'cam-nat', secret })], { stdio: ['pipe', 'pipe', 'inherit'] }),
    );
    [cameraSession] = await opened;
    if (cameraSession.state !== 'streaming') await waitFor(cameraSession, 'state', (state: string) => state === 'streaming', 20_000);
    // It offered with its own credentials, which came before its first offer.
    const ice = camera.events('ice-servers')[0];
    expect(ice?.username).toMatch(/^\d+:cam-nat$/);
    expect(camera.lines.findIndex((l) => l.event === 'ice-servers')).toBeLessThan(camera.lines.findIndex((l) => l.event === 'session-open'));
    const pair = cameraSession.stats.selectedPair;
    expect(pair?.local === 'relay' || pair?.remote === 'relay', JSON.stringify(pair)).toBe(true);
    // The camera did try the bridge's host candidates: the firewall dropped those checks.
    expect((await cameraHost.stats()).up.blocked).toBeGreaterThan(0);

    const password = await tb.bridge.credentials.add('alice', 'viewer');
    const served = waitFor<[ViewerSession]>(tb.bridge.services.relay, 'viewer', () => true, 20_000);
    viewer = new Peer(
      viewerHost.spawn(
        NODE,
        [VIEWER, JSON.stringify({ httpUrl: `http://${cameraHost.gateway}:${tb.bridge.httpPort}`, mqttUrl: `mqtt://${cameraHost.gateway}:${tb.bridge.mqttPort}`, user: 'alice', password, deviceId: 'cam-nat' })],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      ),
    );
    await viewer.next((l) => l.event === 'first-frame', 20_000, 'the viewer to show a first frame');
    [viewerSession] = await served;
    expect(viewer.events('token')[0]?.ice).toMatchObject({ username: expect.stringMatching(/^\d+:alice$/) });
    const viewerPair = viewerSession.selectedPair;
    expect(viewerPair?.local === 'relay' || viewerPair?.remote === 'relay', JSON.stringify(viewerPair)).toBe(true);
    expect((await viewerHost.stats()).up.blocked).toBeGreaterThan(0);
    expect(cameraSession.state).toBe('streaming');
  });

  it('the device gets fresh credentials in-band before its first expire, and its session outlives them', async () => {
    const [first] = camera.events('ice-servers') as [{ expiresAt: number; username: string }];
    const second = (await camera.next((l) => l.event === 'ice-servers' && (l.expiresAt as number) > first.expiresAt, TTL_S * 1000, 'fresh credentials')) as { ts: number };
    expect(second.ts).toBeLessThan(first.expiresAt);
    // The allocation made with the first credentials is refreshed after they expired (its first refresh comes at 5/6
    // of coturn's 6 s, they last 4), and media goes on over it.
    const refreshed = new RegExp(`user <${first.username}>: incoming packet REFRESH processed, success`);
    const line = await turn.waitForLog(refreshed, 10_000);
    expect(turn.logTimes[turn.log.indexOf(line)]).toBeGreaterThan(first.expiresAt);
    await waitFor(cameraSession, 'rtp', () => Date.now() > first.expiresAt, 20_000);
    await flowing(cameraSession);
    expect(tb.bridge.services.answerer.sessions.get('cam-nat')).toBe(cameraSession);
    expect(camera.events('session-closed')).toEqual([]);
  });

  it('a rotated secret keeps running sessions up; the next session uses credentials signed with the new one', async () => {
    // A new camera session (the bridge ends this one; the camera offers again): allocations made under the old
    // secret whose first refresh comes after the rotation.
    cameraSession = await reoffer();
    turn.setSecrets([ROTATED]);
    tb.bridge.services.ice.turn!.rotate(ROTATED);
    const rotatedAt = Date.now();
    const old = new TurnCredentials({ secret: SECRET, urls: [turn.url], ttlS: 60 }).mint('cam-nat').iceServers[0]!;
    expect(await tryAllocate(turn, old.username!, old.credential!)).toMatchObject({ ok: false, code: 401 });
    const fresh = tb.bridge.services.ice.turn!.mint('cam-nat').iceServers[0]!;
    expect(await tryAllocate(turn, fresh.username!, fresh.credential!)).toMatchObject({ ok: true });

    await turn.waitForLog(/user <\d+:cam-nat>: incoming packet REFRESH processed, success/, 10_000, turn.log.length);
    await flowing(cameraSession);
    const frames = () => (viewer.events('summary').at(-1)?.keyframes as number | undefined) ?? 0;
    const seen = frames();
    await viewer.next((l) => l.event === 'summary' && (l.keyframes as number) > seen, 10_000, 'the viewer to keep receiving');
    expect(viewerSession.state).toBe('connected');

    // The device's next credentials are signed with the new secret, and a new session works with them, the old
    // secret being gone from coturn.
    await camera.next((l) => l.event === 'ice-servers' && (l.ts as number) >= rotatedAt, TTL_S * 1000, 'credentials after the rotation');
    cameraSession = await reoffer();
    // The viewer's session stayed, and media resumed on it from the new camera session.
    const resumed = frames();
    await viewer.next((l) => l.event === 'summary' && (l.keyframes as number) > resumed, 15_000, "the viewer to get the new session's video");
    expect(viewerSession.state).toBe('connected');
    const text = JSON.stringify(tb.logs);
    for (const s of [SECRET, ROTATED, old.credential!, fresh.credential!]) expect(text).not.toContain(s);
  });

  /** The bridge ends the camera's session (bye "timeout"); its next one streams over a relayed pair. */
  async function reoffer(): Promise<Session> {
    const reopened = waitFor(tb.bridge.services.answerer, 'session', (s: Session) => s.deviceId === 'cam-nat', 20_000);
    await cameraSession.close('timeout');
    const [next] = await reopened;
    if (next.state !== 'streaming') await waitFor(next, 'state', (state: string) => state === 'streaming', 20_000);
    const pair = next.stats.selectedPair;
    expect(pair?.local === 'relay' || pair?.remote === 'relay', JSON.stringify(pair)).toBe(true);
    return next;
  }
});

/** Media still arrives on the session: ten more packets within 5 s. */
async function flowing(session: Session): Promise<void> {
  const packets = () => session.stats.tracks.reduce((n, t) => n + t.packets, 0);
  const before = packets();
  await waitFor(session, 'rtp', () => packets() > before + 10, 5000);
  expect(session.state).toBe('streaming');
}
