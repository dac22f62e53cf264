/**
 * Real browsers end to end: Debian's Chromium runs the browser camera page (fake camera) and the dashboard against a
 * real bridge on port 0. The camera streams through the bridge like any IoT camera; dashboards sign in, see cameras
 * come and go live, and play the video (size, time advancing, frames decoded and painted). Dashboards run both with
 * mDNS host candidates (what users' browsers send) and with raw IPs, and also watch the Node simulated camera.
 *
 * Two Chromium processes for the whole file: A with the fake camera (its permission grant makes Chromium use raw IP
 * candidates) and B without (mDNS candidates).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { selfSigned } from '../../src/cli/cert.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { createBridge, type TestBridge } from '../helpers/bridge.ts';
import { until } from '../helpers/wait.ts';
import type { Page } from 'playwright-core';
import { chromiumAvailable, launch, openPage, screenshot, SCREENSHOTS, type Browser } from './browser.ts';
import { deviceCard, playback, sentCandidates, signIn, startBrowserCamera, watchAndPlay } from './pages.ts';

const available = chromiumAvailable();

// Two browsers and a bridge on a two-core machine: a test may take a while when another file runs beside it.
describe.skipIf(!available)('dashboard and browser camera in Chromium', { timeout: 90_000 }, () => {
  let tb: TestBridge & { close: () => Promise<void> };
  let cameraBrowser: Browser; // A: fake camera, raw IP candidates
  let mdnsBrowser: Browser; // B: mDNS candidates
  let base: string;
  const secrets: Record<string, string> = {};
  const firstFrames: { path: string; ms: number; timeline?: Record<string, number> }[] = [];

  beforeAll(async () => {
    tb = await createBridge();
    base = `http://127.0.0.1:${tb.bridge.httpPort}`;
    for (const id of ['cam-a', 'cam-b', 'cam-c', 'cam-sim', 'cam-tok']) secrets[id] = await tb.bridge.credentials.add(id, 'device', { replace: true });
    secrets.alice = await tb.bridge.credentials.add('alice', 'viewer', { replace: true });
    secrets.ops = await tb.bridge.credentials.add('ops', 'admin', { replace: true });
    [cameraBrowser, mdnsBrowser] = await Promise.all([launch({ candidates: 'raw-ip', fakeCamera: true }), launch({ candidates: 'mdns' })]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([cameraBrowser?.close(), mdnsBrowser?.close()]);
    await tb?.close();
    if (firstFrames.length > 0) await writeFile(join(SCREENSHOTS, 'first-frame.json'), `${JSON.stringify(firstFrames)}\n`);
  });

  /** The browser camera page streaming as `deviceId`; closed (stopping the camera) when the test ends. */
  async function browserCamera(deviceId: string, codec: 'VP8' | 'H264' = 'VP8') {
    const page = await openPage(cameraBrowser, `${base}/camera`);
    onTestFinished(() => page.close());
    await startBrowserCamera(page, deviceId, secrets[deviceId]!, codec);
    return page;
  }

  /**
   * More clicks on a live camera, each a new watch after signing in again: the click → first frame figure over a few
   * runs (the first run of a page is recorded by the caller). Typically 0.4–0.7 s; fails if the median reaches 3 s,
   * which leaves room for a loaded two-core CI machine running another test file beside this one.
   */
  async function measureFirstFrames(page: Page, deviceId: string, path: string, runs: number): Promise<void> {
    for (let i = 0; i < runs; i++) {
      await page.click('#sign-out');
      await signIn(page, 'alice', secrets.alice!);
      const again = await watchAndPlay(page, deviceId, 0);
      firstFrames.push({ path, ms: again.firstFrameMs, timeline: again.timeline });
    }
    const sorted = firstFrames.filter((f) => f.path === path).map((f) => f.ms).sort((x, y) => x - y);
    const p50 = sorted[Math.floor(sorted.length / 2)]!;
    console.info(`click → first frame (${path}): p50 ${p50} ms of ${sorted.join(', ')}`);
    expect(p50).toBeLessThan(3000);
  }

  /** A signed-in dashboard: alice with tokens, the admin with its password kept (to read cameras' signaling). */
  async function dashboard(browser: Browser, user: 'alice' | 'ops', path = '/') {
    const page = await openPage(browser, `${base}${path}`);
    onTestFinished(() => page.close());
    await signIn(page, user, secrets[user]!, { keepPassword: user === 'ops' });
    return page;
  }

  it('serves both pages and their bundles with the right types and cache headers', async () => {
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain('worker-src blob:'); // mqtt.js's keepalive timer (long-session.test.ts)
    const html = await page.text();
    const script = html.match(/src="(\/assets\/dashboard-[^"]+\.js)"/)?.[1];
    const style = html.match(/href="(\/assets\/dashboard-style-[^"]+\.css)"/)?.[1];
    expect(html).toContain('<meta name="tali-mqtt-path" content="/mqtt">');
    for (const [path, type] of [[script, 'text/javascript; charset=utf-8'], [style, 'text/css; charset=utf-8']] as const) {
      const asset = await fetch(`${base}${path}`);
      expect(asset.status).toBe(200);
      expect(asset.headers.get('content-type')).toBe(type);
      expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(asset.headers.get('content-encoding')).toBe('gzip');
    }
    expect((await fetch(`${base}/camera`)).status).toBe(200);
    expect((await fetch(`${base}/assets/nothing.js`)).status).toBe(404);
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
  });

  it('a Chromium camera streams to the bridge; a dashboard with mDNS candidates sees it online, clicks it and plays', async () => {
    const camera = await browserCamera('cam-a');
    await until(() => tb.bridge.answerer.sessions.size > 0 && [...tb.bridge.answerer.sessions.values()].some((s) => s.deviceId === 'cam-a' && s.state === 'streaming'), 10_000, 'cam-a streaming');
    await screenshot(camera, 'browser-camera');

    const page = await dashboard(mdnsBrowser, 'alice');
    await page.waitForSelector(deviceCard('cam-a', 'online'));
    const played = await watchAndPlay(page, 'cam-a');
    expect(played.videoWidth).toBeGreaterThan(0);
    expect(played.firstFrameMs).toBeGreaterThan(0);
    firstFrames.push({ path: 'mdns, browser camera', ms: played.firstFrameMs, timeline: played.timeline });
    await measureFirstFrames(page, 'cam-a', 'mdns, browser camera', 2);
    const candidates = await sentCandidates(page);
    expect(candidates.some((c) => c.includes('.local'))).toBe(true);
    expect(await page.textContent('#log-scope')).toBe('(your sessions)');
    await screenshot(page, 'dashboard-mdns-browser-camera');
    // Phone width: one column, nothing wider than the screen, the video still playing.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect((await page.locator('video#video').boundingBox())?.width).toBeGreaterThan(300);
    await screenshot(page, 'dashboard-phone');
    expect(page.errors, JSON.stringify(page.errors)).toEqual([]);
  });

  it('two dashboards watch at once; the camera card counts both viewers', async () => {
    await browserCamera('cam-a');
    const [one, two] = await Promise.all([dashboard(mdnsBrowser, 'alice'), dashboard(mdnsBrowser, 'ops')]);
    await Promise.all([one, two].map((page) => page.waitForSelector(deviceCard('cam-a', 'online'))));
    const [a, b] = await Promise.all([watchAndPlay(one, 'cam-a'), watchAndPlay(two, 'cam-a')]);
    expect(a.videoWidth).toBeGreaterThan(0);
    expect(b.videoWidth).toBeGreaterThan(0);
    expect(tb.bridge.relay.streams.get('cam-a')?.viewers.size).toBe(2);
    await one.waitForSelector(`${deviceCard('cam-a')}[data-viewers="2"]`, { state: 'attached' }); // the grid is behind the player
    expect(await two.textContent('#log-scope')).toBe('(camera topics and your sessions)');
    await screenshot(one, 'dashboard-two-viewers-alice');
    await screenshot(two, 'dashboard-two-viewers-admin');
  });

  it('a second camera appears in the list live, and shows offline when it leaves', async () => {
    const page = await dashboard(mdnsBrowser, 'alice');
    const second = await browserCamera('cam-b', 'H264');
    await page.waitForSelector(deviceCard('cam-b', 'online'));
    await screenshot(page, 'dashboard-second-camera');
    await second.click('#stop');
    await page.waitForSelector(deviceCard('cam-b', 'offline'));
    // And back, then gone without a goodbye (tab closed): the broker publishes its will.
    await startBrowserCamera(second, 'cam-b', secrets['cam-b']!, 'H264');
    await page.waitForSelector(deviceCard('cam-b', 'online'));
    await second.close();
    await page.waitForSelector(deviceCard('cam-b', 'offline'));
    await screenshot(page, 'dashboard-camera-left');
  });

  it("an admin watching a camera before it exists: the camera's own signaling shows in the log, then its video", async () => {
    const page = await dashboard(mdnsBrowser, 'ops', '/#cam-c'); // a link straight to the camera
    await page.waitForSelector('#stream-state[data-state=waiting]');
    await page.waitForFunction(() => document.getElementById('log-scope')?.textContent === '(camera topics and your sessions)');
    await browserCamera('cam-c');
    await page.waitForSelector('#log li.in[data-type=offer][data-topic$="/device/cam-c/up"]');
    await page.waitForSelector('#log li.in[data-type=answer][data-topic$="/device/cam-c/down"]');
    await page.waitForFunction(() => (document.querySelector('video#video') as HTMLVideoElement).videoWidth > 0, undefined, { timeout: 25_000 });
    await screenshot(page, 'dashboard-admin-signaling');
  });

  it('signed in with 10-second tokens, the dashboard refreshes them without dropping the video', async () => {
    const camera = new SimulatedCamera({ deviceId: 'cam-tok', secret: secrets['cam-tok']!, connect: nodeConnector(tb.bridge.mqttUrl) });
    onTestFinished(() => camera.stop());
    await camera.start();
    const page = await dashboard(cameraBrowser, 'alice', '/?ttl=10');
    expect(await page.getAttribute('#who', 'data-login')).toBe('token');
    await page.waitForSelector(deviceCard('cam-tok', 'online'));
    const signedInAt = Date.now();
    await watchAndPlay(page, 'cam-tok', 0);
    // A refresh (at 80 % of a 9–10 s token), then past the first token's expiry, when the broker would have closed
    // a connection still using it.
    await page.waitForFunction(() => document.getElementById('who')?.dataset.expires !== undefined, undefined, { timeout: 15_000 });
    await until(() => Date.now() > signedInAt + 10_000, 11_000, "the first token's expiry");
    const decoded = (await playback(page)).framesDecoded;
    await page.waitForFunction((n) => Number(document.getElementById('numbers')?.dataset.framesDecoded ?? 0) > n + 10, decoded, { timeout: 10_000 });
    // One watch all along: no re-watch, still connected.
    expect(await page.locator('#log li.out[data-type=watch]').count()).toBe(1);
    expect(await page.getAttribute('#watch-state', 'data-state')).toBe('connected');
    const refreshes = tb.logs.filter((l) => l.event === 'token_issued' && l.sub === 'alice' && l.refresh === true);
    expect(refreshes.length).toBeGreaterThanOrEqual(1);
    expect(tb.logs.some((l) => l.event === 'token_expired' && l.identity === 'alice')).toBe(false);
  });

  it('over https:// the dashboard connects with wss:// (derived from the page) and plays', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tali-e2e-tls-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const pair = await selfSigned(['localhost', '127.0.0.1'], 1);
    await writeFile(join(dir, 'cert.pem'), pair.cert);
    await writeFile(join(dir, 'key.pem'), pair.key, { mode: 0o600 });
    const tls = await createBridge({ tlsCert: join(dir, 'cert.pem'), tlsKey: join(dir, 'key.pem'), mqttsPort: 0 });
    onTestFinished(() => tls.close());
    const secret = await tls.bridge.credentials.add('cam-tls', 'device', { replace: true });
    const password = await tls.bridge.credentials.add('alice', 'viewer', { replace: true });
    const camera = new SimulatedCamera({ deviceId: 'cam-tls', secret, connect: nodeConnector(tls.bridge.mqttsUrl!.replace('127.0.0.1', 'localhost'), { tls: { ca: pair.cert } }) });
    onTestFinished(() => camera.stop());
    await camera.start();
    const page = await openPage(cameraBrowser, `https://localhost:${tls.bridge.httpPort}/`);
    onTestFinished(() => page.close());
    const sockets: string[] = [];
    page.on('websocket', (socket) => sockets.push(socket.url()));
    await signIn(page, 'alice', password);
    expect(sockets).toEqual([`wss://localhost:${tls.bridge.httpPort}/mqtt`]);
    await page.waitForSelector(deviceCard('cam-tls', 'online'));
    expect((await watchAndPlay(page, 'cam-tls')).videoWidth).toBe(320);
    await screenshot(page, 'dashboard-https-wss');
  });

  it('a dashboard with raw IP candidates watches the simulated Node camera; click to first frame measured', async () => {
    const camera = new SimulatedCamera({ deviceId: 'cam-sim', secret: secrets['cam-sim']!, connect: nodeConnector(tb.bridge.mqttUrl), codec: 'H264' });
    onTestFinished(() => camera.stop());
    await camera.start();
    const page = await dashboard(cameraBrowser, 'alice');
    await page.waitForSelector(deviceCard('cam-sim', 'online'));
    const played = await watchAndPlay(page, 'cam-sim');
    expect(played.videoWidth).toBe(320);
    // The camera page's player is a <tali-player> playing into the page's own <video>.
    expect(await page.locator('tali-player#player[state=playing] > video#video').count()).toBe(1);
    const candidates = await sentCandidates(page);
    expect(candidates.length).toBeGreaterThan(0);
    expect(candidates.some((c) => c.includes('.local'))).toBe(false);
    await screenshot(page, 'dashboard-raw-ip-simulated-camera');
    firstFrames.push({ path: 'raw-ip, simulated camera', ms: played.firstFrameMs, timeline: played.timeline });

    await measureFirstFrames(page, 'cam-sim', 'raw-ip, simulated camera', 4);
    expect((await playback(page)).videoWidth).toBe(320);
  });
});
