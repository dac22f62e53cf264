/**
 * `<tali-player>` on a page of ANOTHER origin, in Debian's Chromium: a second HTTP server (the "site", on localhost
 * and its own port, listed in the bridge's allowedOrigins) serves a page that loads the player from the bridge
 * (127.0.0.1, another port) with one script tag and shows a camera with a viewer token scoped to it, as a site that
 * embeds cameras would; the same page from an origin not listed is told so (state error, code origin-not-allowed).
 * The same page with transport="whep" plays over HTTP and WebRTC alone, POSTing its offer at once and trickling its
 * candidates by PATCH (also while a TURN server that never answers holds gathering, and through a server that
 * refuses PATCH). The site's server mints the tokens through the bridge's POST /api/token (the page never sees a
 * password). Checked: the script's CORS
 * headers, playback (size, time advancing), the states and events the element reports, recovery when the camera
 * leaves and returns and when the MQTT connection drops, and token renewal both ways (attribute after
 * `tali-tokenexpiring`, and `tokenProvider`) past the first token's expiry without an interruption.
 */
import { createSocket } from 'node:dgram';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { BrowserContext, Page, Request } from 'playwright-core';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { PLAYER_ORIGIN_PATH, PLAYER_PATH } from '../../src/player/route.ts';
import { createBridge, startBridge, type TestBridge } from '../helpers/bridge.ts';
import { until } from '../helpers/wait.ts';
import { chromiumAvailable, launch, openPage, screenshot, type Browser } from './browser.ts';

const available = chromiumAvailable();

interface PageEvent {
  id: string;
  type: string;
  detail: { state?: string; previous?: string; reason?: string; code?: string; message?: string };
  /** Date.now() in the page. */
  at: number;
}

/** A WHEP request a player made (its CORS preflights left out), and what it got. */
interface WhepRequest {
  method: string;
  url: string;
  /** When the test heard of it (Date.now(); Chromium reports a request as it sends it). */
  at: number;
  authorization: string | undefined;
  ifMatch: string | undefined;
  status?: number;
  location?: string;
  etag?: string;
}

/** Records the WHEP requests of the context's pages from Chromium's side (nothing in a page changes), until the test ends. */
function recordWhep(context: BrowserContext): WhepRequest[] {
  const seen: WhepRequest[] = [];
  const onRequest = (req: Request) => {
    if (!req.url().includes('/whep/') || req.method() === 'OPTIONS') return;
    const headers = req.headers();
    const entry: WhepRequest = { method: req.method(), url: req.url(), at: Date.now(), authorization: headers.authorization, ifMatch: headers['if-match'] };
    seen.push(entry);
    void req.response().then(async (res) => {
      if (res === null) return;
      entry.status = res.status();
      const headers = await res.allHeaders();
      if (headers.location !== undefined) entry.location = new URL(headers.location, req.url()).href;
      entry.etag = headers.etag;
    }, () => {});
  };
  context.on('request', onRequest);
  onTestFinished(() => void context.off('request', onRequest));
  return seen;
}

/**
 * Each PATCH answered so far went to a session's Location with that session's ETag and the token of the POST that
 * made it (after a renewal, each session's own), was taken (204), and none followed its session's DELETE.
 */
function expectOwnSessionPatches(requests: readonly WhepRequest[]): void {
  const posts = new Map(requests.filter((r) => r.method === 'POST' && r.location !== undefined).map((r) => [r.location!, r]));
  const patches = requests.filter((r) => r.method === 'PATCH' && r.status !== undefined);
  expect(patches.length).toBeGreaterThan(0);
  for (const patch of patches) {
    const post = posts.get(patch.url);
    expect(post, patch.url).toBeDefined();
    expect({ authorization: patch.authorization, ifMatch: patch.ifMatch, status: patch.status }).toEqual({ authorization: post!.authorization, ifMatch: post!.etag, status: 204 });
    expect(requests.slice(0, requests.indexOf(patch)).filter((r) => r.method === 'DELETE' && r.url === patch.url)).toEqual([]);
  }
}

/** What the bridge took from each WHEP session's PATCHes (its debug log), by session ID. */
function trickledBySession(logs: readonly Record<string, unknown>[]): Map<string, { patches: number; candidates: number; endOfCandidates: boolean }> {
  const by = new Map<string, { patches: number; candidates: number; endOfCandidates: boolean }>();
  for (const r of logs) {
    if (r.msg !== 'WHEP candidates trickled') continue;
    const seen = by.get(r.sessionId as string) ?? { patches: 0, candidates: 0, endOfCandidates: false };
    by.set(r.sessionId as string, { patches: seen.patches + 1, candidates: seen.candidates + (r.candidates as number), endOfCandidates: seen.endOfCandidates || r.endOfCandidates === true });
  }
  return by;
}

describe.skipIf(!available)('<tali-player> on another origin in Chromium', { timeout: 60_000 }, () => {
  let tb: TestBridge & { close: () => Promise<void> };
  let browser: Browser;
  let site: Server;
  let siteUrl: string;
  let bridgeUrl: string;
  let aliceSecret: string;
  let cameraSecret: string;
  let tokensIssued = 0;
  /** alice's password on bridges other than the shared one (a test's own), by URL. */
  const otherBridges = new Map<string, string>();

  /** What the site's own server does: a token for alice, scoped to cam1, from the bridge's API. */
  async function mintToken(ttlS: number, bridge = bridgeUrl): Promise<string> {
    const secret = bridge === bridgeUrl ? aliceSecret : otherBridges.get(bridge);
    const res = await fetch(`${bridge}/api/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`alice:${secret}`).toString('base64')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ devices: ['cam1'], ttlS }),
    });
    expect(res.status).toBe(200);
    tokensIssued++;
    return ((await res.json()) as { token: string }).token;
  }

  beforeAll(async () => {
    // The site: its page, and its token endpoint (GET /token?ttl=S). It listens first: the bridge must know its
    // origin (allowedOrigins), since browsers' WebSockets from other origins are refused otherwise.
    site = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (url.pathname === '/token') {
        void mintToken(Number(url.searchParams.get('ttl') ?? 60), url.searchParams.get('bridge') ?? undefined).then((token) => res.writeHead(200, { 'content-type': 'text/plain' }).end(token));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(sitePage(url.searchParams));
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://localhost:${(site.address() as AddressInfo).port}`;
    tb = await createBridge({ allowedOrigins: siteUrl });
    bridgeUrl = `http://127.0.0.1:${tb.bridge.httpPort}`;
    aliceSecret = await tb.bridge.credentials.add('alice', 'viewer', { replace: true });
    cameraSecret = await tb.bridge.credentials.add('cam1', 'device', { replace: true });
    browser = await launch({ candidates: 'raw-ip' });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => site?.close(resolve));
    await tb?.close();
  });

  /**
   * The site's page: the player script from the bridge, players whose token comes from the site (`?ttl=` seconds),
   * renewed after `tali-tokenexpiring` (player "attr") or by a tokenProvider (player "provider", with `?provider`);
   * `?bridge=` another bridge than the shared one.
   */
  function sitePage(params: URLSearchParams): string {
    const ttl = Number(params.get('ttl') ?? 60);
    const players = params.has('provider') ? ['attr', 'provider'] : ['attr'];
    const transport = params.get('transport') ?? 'mqtt';
    const bridge = params.get('bridge') ?? bridgeUrl;
    const tokenQuery = new URLSearchParams({ ttl: String(ttl), ...(bridge !== bridgeUrl && { bridge }) });
    return `<!doctype html><html><head><meta charset="utf-8"><title>a site</title></head><body>
<script src="${bridge}${PLAYER_PATH}"></script>
<script>
  window.events = [];
  window.renewals = { attr: 0, provider: 0 };
  const fresh = () => fetch('/token?${tokenQuery}').then((r) => r.text());
  for (const type of ['tali-statechange', 'tali-playing', 'tali-error', 'tali-tokenexpiring']) {
    document.addEventListener(type, (e) => window.events.push({ id: e.target.id, type, detail: e.detail, at: Date.now() }));
  }
  document.addEventListener('tali-tokenexpiring', async (e) => {
    if (e.target.id !== 'attr') return;
    e.target.setAttribute('token', await fresh());
    window.renewals.attr++;
  });
  (async () => {
    for (const id of ${JSON.stringify(players)}) {
      const player = document.createElement('tali-player');
      player.id = id;
      if (id === 'provider') player.tokenProvider = async () => (window.renewals.provider++, fresh());
      player.setAttribute('bridge', '${bridge}');
      player.setAttribute('device', 'cam1');
      player.setAttribute('transport', '${transport}');
      player.setAttribute('token', await fresh());
      document.body.append(player);
    }
  })();
</script></body></html>`;
  }

  async function startCamera(on = { bridge: tb.bridge, secret: cameraSecret }): Promise<SimulatedCamera> {
    const camera = new SimulatedCamera({ deviceId: 'cam1', secret: on.secret, connect: nodeConnector(on.bridge.mqttUrl), backoff: { initialMs: 100, maxMs: 500 } });
    onTestFinished(() => camera.stop());
    await camera.start();
    return camera;
  }

  const events = (page: Page) => page.evaluate(() => (window as unknown as { events: PageEvent[] }).events);
  const states = async (page: Page, id: string) => (await events(page)).filter((e) => e.id === id && e.type === 'tali-statechange').map((e) => e.detail.state);

  /** Video of player `id`: its size and the time it has played. */
  const video = (page: Page, id: string) =>
    page.evaluate((id) => {
      const v = (document.getElementById(id) as HTMLElement & { video: HTMLVideoElement }).video;
      return { width: v.videoWidth, time: v.currentTime };
    }, id);

  /** Waits until player `id` plays and its video time passes `seconds` more than `from`. */
  async function playsOn(page: Page, id: string, from = 0, seconds = 1): Promise<void> {
    await page.waitForSelector(`tali-player#${id}[state=playing]`, { timeout: 20_000 });
    await page.waitForFunction(
      ({ id, until }) => ((document.getElementById(id) as HTMLElement & { video: HTMLVideoElement }).video.currentTime ?? 0) > until,
      { id, until: from + seconds },
      { timeout: 20_000 },
    );
  }

  it('the bridge serves the player script at a stable path for any origin (CORS, revalidated)', async () => {
    const res = await fetch(`${bridgeUrl}${PLAYER_PATH}`, { headers: { origin: 'http://elsewhere.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const body = await res.text();
    expect(body).toContain('tali-player');
    const again = await fetch(`${bridgeUrl}${PLAYER_PATH}`, { headers: { 'if-none-match': res.headers.get('etag')! } });
    expect(again.status).toBe(304);
    const preflight = await fetch(`${bridgeUrl}${PLAYER_PATH}`, { method: 'OPTIONS', headers: { origin: 'http://elsewhere.example', 'access-control-request-method': 'GET' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('plays a camera with a scoped token; reports waiting, playing, offline and reconnecting as it recovers', async () => {
    const page = await openPage(browser, `${siteUrl}/?ttl=300`);
    onTestFinished(() => page.close());
    expect(new URL(page.url()).origin).not.toBe(new URL(bridgeUrl).origin);
    // No camera yet: the bridge asks cam1 to start and the player says it waits.
    await page.waitForSelector('tali-player#attr[state=waiting]', { timeout: 20_000 });
    let camera = await startCamera();
    await playsOn(page, 'attr');
    expect((await video(page, 'attr')).width).toBeGreaterThan(0);
    await screenshot(page, 'player-other-origin');

    // The camera leaves: offline. A camera returns: playing again, on the same element.
    await camera.stop();
    await page.waitForSelector('tali-player#attr[state=offline]', { timeout: 20_000 });
    camera = await startCamera();
    await playsOn(page, 'attr', (await video(page, 'attr')).time);

    // The bridge drops the page's MQTT connection: reconnecting, then playing again by itself.
    const dropped = tb.bridge.broker.disconnectWhere((identity) => identity.id === 'alice', 'test: drop the viewer');
    expect(dropped).toBe(1);
    await page.waitForSelector('tali-player#attr[state=reconnecting]', { timeout: 20_000 });
    await playsOn(page, 'attr', (await video(page, 'attr')).time);

    const seen = await states(page, 'attr');
    expect(seen.slice(0, 2)).toEqual(['connecting', 'waiting']);
    for (const state of ['playing', 'offline', 'reconnecting']) expect(seen).toContain(state);
    expect((await events(page)).filter((e) => e.type === 'tali-playing').length).toBeGreaterThanOrEqual(3);
    expect((await events(page)).filter((e) => e.type === 'tali-error')).toEqual([]);

    // A mode the player does not know is an error the page can see, not a silent black box.
    const unknown = await page.evaluate(async () => {
      const player = document.createElement('tali-player');
      player.id = 'rtsp';
      for (const [name, value] of [['bridge', location.href], ['device', 'cam1'], ['token', 'tali1.x.y'], ['user', 'alice'], ['mode', 'rtsp']]) player.setAttribute(name!, value!);
      const error = new Promise<string>((resolve) => player.addEventListener('tali-error', (e) => resolve((e as CustomEvent<{ code: string }>).detail.code)));
      document.body.append(player);
      return { code: await error, state: player.getAttribute('state') };
    });
    expect(unknown).toEqual({ code: 'unsupported-mode', state: 'error' });
    expect(page.errors).toEqual([]);
  });

  it('transport="whep": plays over WHEP alone (no WebSocket) and renews 8-second tokens by new sessions without an interruption', async () => {
    const logsFrom = tb.logs.length; // the bridge is shared by this file's tests
    await startCamera();
    const requests = recordWhep(browser.context);
    const opened = Date.now();
    const page = await openPage(browser, `${siteUrl}/?ttl=8&provider&transport=whep`);
    onTestFinished(() => page.close());
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.waitForSelector('tali-player#attr[state=playing]', { timeout: 20_000 });
    console.log(`page open → playing (whep, camera streaming): ${Date.now() - opened} ms`);
    await playsOn(page, 'attr');
    await playsOn(page, 'provider');
    const startedAt = Date.now();
    // Both renew at half the token's life and move to a session made with the new token before the bridge ends the
    // first one at its expiry; the video element plays on (the new session's tracks replace the old ones).
    await page.waitForFunction(() => {
      const r = (window as unknown as { renewals: { attr: number; provider: number } }).renewals;
      return r.attr >= 1 && r.provider >= 1;
    }, undefined, { timeout: 20_000 });
    await page.waitForFunction((until) => Date.now() > until, startedAt + 9000, { timeout: 20_000 });
    for (const id of ['attr', 'provider']) await playsOn(page, id, (await video(page, id)).time, 1);
    for (const id of ['attr', 'provider']) {
      const changes = (await events(page)).filter((e) => e.id === id && e.type === 'tali-statechange').map((e) => `${e.detail.state} (${e.detail.reason})`);
      const errors = (await events(page)).filter((e) => e.id === id && e.type === 'tali-error').map((e) => e.detail);
      expect({ changes, errors }, id).toEqual({ changes: ['connecting (start)', 'playing (frames are painted)'], errors: [] });
    }
    expect(sockets).toEqual([]);
    // Each renewal deleted the session it replaced: every session that ended did so by the player's DELETE, none by
    // its token's expiry. (A renewal may be under way right now, its new session not yet swapped in, so the live
    // count is one per player plus at most one each: the next renewal comes every 4 s.)
    const ended = tb.logs.slice(logsFrom).filter((r) => r.msg === 'WHEP session ended').map((r) => r.why);
    expect(ended.length).toBeGreaterThanOrEqual(2);
    expect(ended.filter((why) => why !== 'DELETE')).toEqual([]);
    const created = tb.logs.slice(logsFrom).filter((r) => r.msg === 'WHEP session created').length;
    expect(tb.bridge.services.whep.size).toBe(created - ended.length);
    expect(tb.bridge.services.whep.size).toBeGreaterThanOrEqual(2);
    expect(tb.bridge.services.whep.size).toBeLessThanOrEqual(4);
    // Every session trickled its candidates (no ICE server: gathering ends in milliseconds, so the end of candidates
    // too) with its own token, renewed sessions included; the bridge took them. (The newest session's PATCH may be
    // under way still.)
    expectOwnSessionPatches(requests);
    const trickled = trickledBySession(tb.logs.slice(logsFrom));
    expect(trickled.size).toBeGreaterThanOrEqual(created - 2);
    for (const [id, t] of trickled) expect({ id, candidates: t.candidates > 0, end: t.endOfCandidates }).toEqual({ id, candidates: true, end: true });
    expect(page.errors).toEqual([]);
  });

  /**
   * A bridge of the test's own with a streaming cam1, whose TURN server never answers (a UDP port bound and left
   * silent): the 201's Link headers hand it to the player, whose next session gathers with it; Chromium's allocation
   * then retries for about 40 s (gathering ends sooner only once a pair works). The bridge's own probe finds the
   * server silent, so the bridge's peers do not wait for it.
   */
  async function silentTurnBridge(): Promise<{ own: TestBridge; ownUrl: string; turnUrl: string }> {
    const silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => silent.close(() => resolve())));
    const turnUrl = `turn:127.0.0.1:${silent.address().port}?transport=udp`;
    const own = await startBridge({ turnSecret: 'a-secret-for-a-silent-turn-server', turnUrls: turnUrl });
    const ownUrl = `http://127.0.0.1:${own.bridge.httpPort}`;
    otherBridges.set(ownUrl, await own.bridge.credentials.add('alice', 'viewer', { replace: true }));
    onTestFinished(() => void otherBridges.delete(ownUrl));
    await startCamera({ bridge: own.bridge, secret: await own.bridge.credentials.add('cam1', 'device', { replace: true }) });
    return { own, ownUrl, turnUrl };
  }

  it('transport="whep": POSTs its offer at once and trickles its candidates by PATCH, even while gathering takes long (a TURN server that never answers)', { timeout: 90_000 }, async () => {
    const { own, ownUrl, turnUrl } = await silentTurnBridge();
    const requests = recordWhep(browser.context);
    const page = await openPage(browser, `${siteUrl}/?ttl=300&transport=whep&bridge=${encodeURIComponent(ownUrl)}`);
    onTestFinished(() => page.close());
    await playsOn(page, 'attr');

    // The bridge ends the session: the player POSTs a new one, gathering with the TURN server of the first 201.
    expect(own.bridge.services.whep.disconnectWhere(() => true, 'test: end the WHEP session')).toBe(1);
    await page.waitForSelector('tali-player#attr[state=reconnecting]', { timeout: 20_000 });
    await playsOn(page, 'attr', (await video(page, 'attr')).time);
    const servers = await page.evaluate(() =>
      (document.getElementById('attr') as HTMLElement & { peerConnection: RTCPeerConnection }).peerConnection.getConfiguration().iceServers?.map((s) => s.urls),
    );
    expect(servers).toEqual([[turnUrl]]);
    const all = await events(page);
    const retry = all.find((e) => e.type === 'tali-statechange' && e.detail.reason === 'retry')!;
    const playing = all.find((e) => e.type === 'tali-statechange' && e.detail.state === 'playing' && e.at > retry.at)!;
    const posts = requests.filter((r) => r.method === 'POST');
    expect(posts.map((r) => r.status)).toEqual([201, 201]);
    const postDelayMs = posts[1]!.at - retry.at;
    console.log(`whep retry with a silent TURN server: POST ${postDelayMs} ms after its start, first frame after ${playing.at - retry.at} ms`);
    // Before trickling, the player waited up to 2 s for gathering to end before its POST (GATHERING_MS).
    expect(postDelayMs).toBeLessThan(1000);

    // The bridge got each session's candidates by PATCH, and the end of candidates: the first session's within
    // milliseconds (no ICE server); the second one's host candidates, gathered after its POST, then its end once
    // Chromium stopped gathering (it gives up on the TURN allocation when a pair works: not before playback).
    const sessions = own.logs.filter((r) => r.msg === 'WHEP session created').map((r) => r.sessionId as string);
    expect(sessions).toHaveLength(2);
    await until(() => trickledBySession(own.logs).get(sessions[1]!)?.endOfCandidates === true, 10_000, 'the second session\'s end of candidates');
    const trickled = trickledBySession(own.logs);
    for (const id of sessions) expect(trickled.get(id)).toMatchObject({ candidates: expect.any(Number), endOfCandidates: true });
    for (const id of sessions) expect(trickled.get(id)!.candidates).toBeGreaterThan(0);
    expectOwnSessionPatches(requests);
    // The browser logs the 404 of the ended session's HEAD itself; nothing else went wrong.
    expect(page.errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
  });

  it('transport="whep" through a WHEP server that does not trickle (PATCH → 405): plays all the same, and PATCHes a session no more once refused', { timeout: 90_000 }, async () => {
    const { own, ownUrl } = await silentTurnBridge();
    // The server: the bridge behind a proxy that refuses every PATCH, as WHEP §4.4.1 allows a server to.
    const refused: string[] = [];
    const proxy = createServer((req, res) => {
      if (req.method === 'PATCH') {
        refused.push(req.url ?? '');
        return void req.resume().on('end', () => res.writeHead(405, { allow: 'GET, HEAD, POST, DELETE, OPTIONS', 'access-control-allow-origin': '*', 'content-length': '0' }).end());
      }
      const upstream = request(`${ownUrl}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => (proxy.closeAllConnections(), proxy.close(() => resolve()))));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    otherBridges.set(proxyUrl, otherBridges.get(ownUrl)!);
    onTestFinished(() => void otherBridges.delete(proxyUrl));
    const page = await openPage(browser, `${siteUrl}/?ttl=300&transport=whep&bridge=${encodeURIComponent(proxyUrl)}`);
    onTestFinished(() => page.close());
    await playsOn(page, 'attr');
    // A second session, gathering with the silent TURN server: its first PATCH (the candidates from before the 201)
    // is refused; the end of its candidates, once Chromium stops gathering, would be a second one.
    expect(own.bridge.services.whep.disconnectWhere(() => true, 'test: end the WHEP session')).toBe(1);
    await page.waitForSelector('tali-player#attr[state=reconnecting]', { timeout: 20_000 });
    await playsOn(page, 'attr', (await video(page, 'attr')).time);
    await page.waitForFunction(() => (document.getElementById('attr') as HTMLElement & { peerConnection: RTCPeerConnection }).peerConnection.iceGatheringState === 'complete', undefined, { timeout: 45_000 });
    const sessions = own.logs.filter((r) => r.msg === 'WHEP session created').map((r) => `/whep/cam1/${r.sessionId as string}`);
    expect(sessions).toHaveLength(2);
    expect(refused).toEqual(sessions);
    expect(trickledBySession(own.logs).size).toBe(0);
    // No error for a refusal the draft allows; the browser logs the 405s and the ended session's 404 itself.
    expect((await events(page)).filter((e) => e.type === 'tali-error')).toEqual([]);
    expect(page.errors.filter((e) => !/status of 40[45]/.test(e))).toEqual([]);
  });

  it('transport="whep": says offline while the camera is away (409, then no media), plays when it returns, reconnects when the bridge ends its session', { timeout: 90_000 }, async () => {
    const page = await openPage(browser, `${siteUrl}/?ttl=300&transport=whep`);
    onTestFinished(() => page.close());
    // No camera yet: the bridge answers 409 (offline) and the player says so, trying again after Retry-After.
    await page.waitForSelector('tali-player#attr[state=offline]', { timeout: 20_000 });
    let camera = await startCamera();
    await playsOn(page, 'attr');

    // The camera leaves: the bridge keeps the WHEP session (the camera's next session feeds it); the player sees no
    // packets, asks the bridge (HEAD: the session stands) and says offline. The camera returns: playing again.
    await camera.stop();
    await page.waitForSelector('tali-player#attr[state=offline]', { timeout: 20_000 });
    camera = await startCamera();
    await playsOn(page, 'attr', (await video(page, 'attr')).time);

    // The bridge ends the session (as at a revocation): the player finds its resource gone (404), reconnects, plays.
    expect(tb.bridge.services.whep.disconnectWhere(() => true, 'test: end the WHEP sessions')).toBe(1);
    await page.waitForSelector('tali-player#attr[state=reconnecting]', { timeout: 20_000 });
    await playsOn(page, 'attr', (await video(page, 'attr')).time);
    const changes = (await events(page)).filter((e) => e.type === 'tali-statechange').map((e) => `${e.detail.state} (${e.detail.reason})`);
    expect(changes).toEqual([
      'connecting (start)',
      'offline (camera cam1 is offline)',
      'connecting (session answered)',
      'playing (frames are painted)',
      'offline (no media for 4 s: the camera is away)',
      'connecting (media again)',
      'playing (frames are painted)',
      'reconnecting (the bridge ended the session)',
      'connecting (retry)',
      'playing (frames are painted)',
    ]);
    expect(tb.bridge.services.whep.size).toBe(1);
    // The browser logs each 409 (offline) and the 404 (the ended session) itself; nothing else went wrong.
    expect(page.errors.filter((e) => !/status of (409|404)/.test(e))).toEqual([]);
  });

  it('a page on an origin the bridge does not list: the MQTT player says so (error, no endless reconnecting); a WHEP player with a bad token says unauthorized', async () => {
    // The same site reached as 127.0.0.1 instead of localhost: another origin, not listed.
    const other = siteUrl.replace('localhost', '127.0.0.1');
    const page = await openPage(browser, `${other}/?ttl=300`);
    onTestFinished(() => page.close());
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.waitForSelector('tali-player#attr[state=error]', { timeout: 20_000 });
    const errors = (await events(page)).filter((e) => e.type === 'tali-error').map((e) => e.detail);
    expect(errors).toEqual([{ code: 'origin-not-allowed', message: expect.stringContaining(`(${other})`) }]);
    expect(errors[0]!.message).toContain('allowedOrigins');
    expect(await states(page, 'attr')).toEqual(['connecting', 'reconnecting', 'error']);
    expect(sockets.length).toBeGreaterThanOrEqual(1);
    // The bridge tells a page only about its own origin.
    const verdict = await page.evaluate((url) => fetch(url).then((r) => r.json()), `${bridgeUrl}${PLAYER_ORIGIN_PATH}`);
    expect(verdict).toEqual({ origin: other, allowed: false });

    // WHEP: a token the bridge refuses is an error at once (one POST, 401), not a retry loop.
    const posts: string[] = [];
    page.on('request', (req) => req.method() === 'POST' && posts.push(req.url()));
    const whep = await page.evaluate(async (bridge) => {
      const player = document.createElement('tali-player');
      player.id = 'bad';
      for (const [name, value] of [['bridge', bridge], ['device', 'cam1'], ['token', 'tali1.x.y'], ['user', 'alice'], ['transport', 'whep']]) player.setAttribute(name!, value!);
      const error = new Promise<{ code: string; message: string }>((resolve) => player.addEventListener('tali-error', (e) => resolve((e as CustomEvent).detail)));
      document.body.append(player);
      return { error: await error, state: player.getAttribute('state') };
    }, bridgeUrl);
    expect(whep).toEqual({ error: { code: 'unauthorized', message: expect.stringMatching(/^401: /) }, state: 'error' });
    expect(posts).toEqual([`${bridgeUrl}/whep/cam1`]);
    // The browser logs the refused handshake and the 401 itself; nothing else went wrong in the page.
    expect(page.errors.filter((e) => !/Unexpected response code: 403|status of 401/.test(e))).toEqual([]);
  });

  it('renews 8-second tokens (attribute after tali-tokenexpiring, and tokenProvider) without interrupting the video', async () => {
    await startCamera();
    const issuedBefore = tokensIssued;
    const opened = Date.now();
    const page = await openPage(browser, `${siteUrl}/?ttl=8&provider`);
    onTestFinished(() => page.close());
    const startedAt = Date.now();
    await page.waitForSelector('tali-player#attr[state=playing]', { timeout: 20_000 });
    console.log(`page open → playing (mqtt, camera streaming): ${Date.now() - opened} ms`);
    await playsOn(page, 'attr');
    await playsOn(page, 'provider');
    // Both players renew (80 % into the first token's life) and play on past its expiry, when the broker closes
    // whatever connection still used it.
    await page.waitForFunction(() => {
      const r = (window as unknown as { renewals: { attr: number; provider: number } }).renewals;
      return r.attr >= 1 && r.provider >= 1;
    }, undefined, { timeout: 20_000 });
    const from = { attr: (await video(page, 'attr')).time, provider: (await video(page, 'provider')).time };
    await page.waitForFunction((until) => Date.now() > until, startedAt + 9000, { timeout: 20_000 });
    await playsOn(page, 'attr', from.attr, 1);
    await playsOn(page, 'provider', from.provider, 1);
    for (const id of ['attr', 'provider']) {
      const changes = (await events(page)).filter((e) => e.id === id && e.type === 'tali-statechange').map((e) => `${e.detail.state} (${e.detail.reason})`);
      const errors = (await events(page)).filter((e) => e.id === id && e.type === 'tali-error').map((e) => e.detail);
      expect({ changes, errors }, id).toEqual({ changes: ['connecting (start)', 'playing (frames are painted)'], errors: [] });
    }
    expect((await events(page)).filter((e) => e.type === 'tali-tokenexpiring').map((e) => e.id)).toEqual(expect.arrayContaining(['attr']));
    expect(tokensIssued - issuedBefore).toBeGreaterThanOrEqual(4); // two first tokens, one renewal each at least
    expect(page.errors).toEqual([]);
  });
});
