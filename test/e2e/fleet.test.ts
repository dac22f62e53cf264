/**
 * The operator's dashboard in Chromium against a real bridge with a fleet of 12 simulated cameras (the Node device
 * SDK streaming small VP8 clips) and a Chromium camera: the grid with a still of every camera, search and natural
 * order, a 2×2 live view, a recording played with a seek, a device added in the page and streamed to from /camera,
 * the sign-in (wrong password in the page, no Basic dialog, a CLI token, a reload keeping the session, deep links,
 * an unknown camera), and a phone-width player opening in view. One bridge and one browser for the file; each test
 * saves a screenshot under test-output/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Page } from 'playwright-core';
import { SimulatedCamera } from '../../devices/camera/simulated-camera.ts';
import { nodeConnector } from '../../src/client/node-connector.ts';
import { createBridge, type TestBridge } from '../helpers/bridge.ts';
import { tali } from '../helpers/cli.ts';
import { chromiumAvailable, launch, openPage, screenshot, type Browser } from './browser.ts';
import { deviceCard, signIn, startBrowserCamera } from './pages.ts';

const available = chromiumAvailable();
const FLEET = Array.from({ length: 12 }, (_, i) => `cam-${i + 1}`);

describe.skipIf(!available)('the operator dashboard with a fleet', { timeout: 90_000 }, () => {
  let tb: TestBridge & { close: () => Promise<void> };
  let browser: Browser;
  let base: string;
  let admin: string;
  const cameras: SimulatedCamera[] = [];

  beforeAll(async () => {
    tb = await createBridge({ snapshotRefreshMs: 2000, recordSegmentMs: 60_000 });
    base = `http://127.0.0.1:${tb.bridge.httpPort}`;
    admin = await tb.bridge.credentials.add('ops', 'admin');
    for (const [i, id] of FLEET.entries()) {
      const secret = await tb.bridge.credentials.add(id, 'device');
      cameras.push(new SimulatedCamera({ deviceId: id, secret, connect: nodeConnector(tb.bridge.mqttUrl), model: i % 2 === 0 ? 'porch-cam' : 'yard-cam' }));
    }
    [browser] = await Promise.all([launch({ candidates: 'raw-ip', fakeCamera: true }), ...cameras.map((c) => c.start())]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all(cameras.map((c) => c.stop()));
    await tb?.close();
  });

  async function dashboard(path = '/', options: { width?: number; signIn?: boolean } = {}): Promise<Page & { errors: string[] }> {
    const page = await openPage(browser, `${base}${path}`);
    onTestFinished(() => page.close());
    if (options.width) await page.setViewportSize({ width: options.width, height: 844 });
    if (options.signIn !== false) await signIn(page, 'ops', admin);
    return page;
  }

  const stillsShown = (page: Page) => page.$$eval('li.device img.still[src^="blob:"]', (imgs) => (imgs as HTMLImageElement[]).filter((i) => i.complete && i.naturalWidth > 0).length);

  it('the grid: every camera with a still, in natural order; search by ID or model, filter by state', async () => {
    const page = await dashboard();
    await page.waitForFunction((n) => document.querySelectorAll('li.device[data-state="online"]').length >= n, FLEET.length, { timeout: 20_000 });
    await page.waitForFunction(
      (n) => [...document.querySelectorAll<HTMLImageElement>('li.device img.still')].filter((i) => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 0).length >= n,
      FLEET.length,
      { timeout: 30_000 },
    );
    expect(await stillsShown(page)).toBeGreaterThanOrEqual(FLEET.length);
    const order = await page.$$eval('li.device', (tiles) => tiles.map((t) => (t as HTMLElement).dataset.device));
    expect(order.filter((id) => id?.startsWith('cam-'))).toEqual(FLEET); // cam-2 before cam-10
    // Rates from the bridge on each tile.
    await page.waitForFunction(() => [...document.querySelectorAll<HTMLElement>('li.device[data-fps]')].length >= 12, undefined, { timeout: 15_000 });
    await screenshot(page, 'fleet-grid');

    await page.fill('#search', 'cam-1');
    expect(await page.$$eval('li.device:not([hidden])', (t) => t.map((x) => (x as HTMLElement).dataset.device))).toEqual(['cam-1', 'cam-10', 'cam-11', 'cam-12']);
    await page.fill('#search', 'yard');
    expect(await page.locator('li.device:not([hidden])').count()).toBe(6);
    await page.fill('#search', '');
    await page.selectOption('#state-filter', 'offline');
    expect(await page.locator('li.device:not([hidden])').count()).toBe(0);
    await page.selectOption('#state-filter', 'all');
    expect(page.errors).toEqual([]);
  });

  it('a 2×2 live view plays four cameras at once', async () => {
    const page = await dashboard('/#/live/cam-1,cam-2,cam-3,cam-4');
    await page.waitForSelector('#live-view:not([hidden])');
    await page.waitForFunction(
      () => [...document.querySelectorAll<HTMLVideoElement>('.live-cell video')].filter((v) => v.videoWidth > 0 && v.currentTime > 1).length === 4,
      undefined,
      { timeout: 30_000 },
    );
    const times = await page.$$eval('.live-cell video', (vs) => (vs as HTMLVideoElement[]).map((v) => v.currentTime));
    await page.waitForFunction((before) => [...document.querySelectorAll<HTMLVideoElement>('.live-cell video')].every((v, i) => v.currentTime > (before[i] ?? 0) + 1), times, { timeout: 15_000 });
    expect(tb.bridge.relay.streams.get('cam-3')?.viewers.size).toBe(1);
    // Each cell is a <tali-player> (the element any site embeds) playing into its <video>, over the dashboard's one
    // MQTT connection rather than one of its own.
    expect(await page.locator('.live-cell tali-player[state=playing] > video').count()).toBe(4);
    expect(await page.$$eval('.live-cell tali-player', (els) => els.every((e) => (e as HTMLElement & { client?: object }).client !== undefined && (e as HTMLElement & { client?: object }).client === (els[0] as HTMLElement & { client?: object }).client))).toBe(true);
    await screenshot(page, 'live-2x2');
  });

  it('a recording: Record, Stop, then played in the page with a seek (byte ranges), and downloadable', async () => {
    const page = await dashboard('/#/camera/cam-5');
    await page.waitForFunction(() => (document.querySelector('video#video') as HTMLVideoElement).currentTime > 0.5, undefined, { timeout: 20_000 });
    await page.waitForSelector('#record:not([hidden])');
    await page.click('#record');
    await page.waitForFunction(() => document.getElementById('record')?.dataset.recording === 'true', undefined, { timeout: 10_000 });
    const started = (await page.evaluate(() => (document.querySelector('video#video') as HTMLVideoElement).currentTime)) as number;
    // Four seconds of the camera's video into the file.
    await page.waitForFunction((t) => (document.querySelector('video#video') as HTMLVideoElement).currentTime > t + 4, started, { timeout: 20_000 });
    await page.click('#record');
    await page.waitForFunction(() => document.getElementById('record')?.dataset.recording === 'false', undefined, { timeout: 10_000 });

    const ranges: number[] = [];
    page.on('response', (res) => res.url().includes('/files/') && ranges.push(res.status()));
    await page.click('#camera-recordings');
    await page.waitForSelector('#recordings-table tr[data-device="cam-5"]');
    const row = await page.textContent('#recordings-table tr[data-device="cam-5"]');
    expect(row).toMatch(/\d+ s/); // a duration
    expect(row).toMatch(/MB/);
    await page.click('#recordings-table tr[data-device="cam-5"] button.play');
    await page.waitForFunction(() => {
      const v = document.getElementById('recording-video') as HTMLVideoElement;
      return v.readyState >= 1 && Number.isFinite(v.duration) && v.duration > 3;
    }, undefined, { timeout: 15_000 });
    const seekTo = await page.evaluate(async () => {
      const v = document.getElementById('recording-video') as HTMLVideoElement;
      v.pause(); // so that currentTime stays where the seek put it
      const target = v.duration * 0.6;
      const seeked = new Promise((resolve) => v.addEventListener('seeked', resolve, { once: true }));
      v.currentTime = target;
      await seeked;
      return target;
    });
    const after = await page.evaluate(() => (document.getElementById('recording-video') as HTMLVideoElement).currentTime);
    expect(Math.abs(after - seekTo)).toBeLessThan(0.1);
    await page.waitForFunction(() => (document.getElementById('recording-video') as HTMLVideoElement).videoWidth === 320, undefined, { timeout: 10_000 });
    // It plays on from there.
    await page.evaluate(() => (document.getElementById('recording-video') as HTMLVideoElement).play());
    await page.waitForFunction((t) => (document.getElementById('recording-video') as HTMLVideoElement).currentTime > t + 0.3, seekTo, { timeout: 10_000 });
    expect(ranges).toContain(206); // the browser asked for byte ranges and got them
    await screenshot(page, 'recording-seek');
    const href = await page.getAttribute('#recordings-table tr[data-device="cam-5"] a.download', 'href');
    const download = await fetch(new URL(href!, `${base}/`));
    expect(download.status).toBe(200);
    expect(download.headers.get('content-disposition')).toMatch(/^attachment/);
    expect((await download.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
  });

  it('a device added in the page streams from /camera, opened by the link the page shows', async () => {
    const page = await dashboard('/#/devices');
    await page.fill('#add-device input[name=id]', 'cam-web');
    await page.click('#add-device button[type=submit]');
    await page.waitForSelector('#secret-box:not([hidden])');
    const secret = (await page.textContent('#secret-value'))!.trim();
    expect(secret.length).toBeGreaterThan(20);
    expect(await page.getAttribute('#secret-qr', 'data-text')).toBe(await page.getAttribute('#secret-link', 'href'));
    await screenshot(page, 'device-added');
    const link = (await page.getAttribute('#secret-link', 'href'))!;
    const camera = await openPage(browser, link);
    onTestFinished(() => camera.close());
    expect(await camera.inputValue('input[name=deviceId]')).toBe('cam-web');
    expect(await camera.inputValue('input[name=secret]')).toBe(secret);
    expect(new URL(camera.url()).hash).toBe(''); // the secret left the address bar
    await camera.click('#start');
    await camera.waitForSelector('#session[data-state=connected]', { timeout: 15_000 });
    await page.waitForSelector('#devices-table tr[data-device="cam-web"][data-state="online"]', { timeout: 10_000 });
    await page.goto(`${base}/#/camera/cam-web`);
    await page.waitForFunction(() => (document.querySelector('video#video') as HTMLVideoElement).videoWidth > 0, undefined, { timeout: 20_000 });
    await screenshot(page, 'device-streaming');
    expect(camera.errors).toEqual([]);
  });

  it('sign-in: a wrong password is said in the page (no browser dialog); a reload keeps the session; deep links; unknown cameras', async () => {
    const page = await dashboard('/', { signIn: false });
    const dialogs: string[] = [];
    page.on('dialog', (d) => void (dialogs.push(d.type()), d.dismiss()));
    await page.fill('input[name=user]', 'ops');
    await page.fill('input[name=password]', 'not-the-secret');
    await page.click('form#login button[type=submit]');
    await page.waitForFunction(() => document.getElementById('login-error')?.textContent === 'Wrong user name or password.');
    await screenshot(page, 'sign-in-wrong-password');
    expect(dialogs).toEqual([]);

    await signIn(page, 'ops', admin);
    await page.goto(`${base}/#/camera/cam-7`);
    await page.reload();
    await page.waitForSelector('#connection[data-state=connected]', { timeout: 10_000 });
    expect(await page.isHidden('form#login')).toBe(true);
    await page.waitForFunction(() => (document.querySelector('video#video') as HTMLVideoElement).currentTime > 0.5, undefined, { timeout: 20_000 });
    expect(await page.textContent('#watching')).toBe('cam-7');

    await page.goto(`${base}/#/camera/no-such-cam`);
    await page.waitForSelector('#why[data-reason="unknown"]', { timeout: 10_000 });
    expect(await page.textContent('#why')).toContain('No camera named no-such-cam');
    expect(tb.logs.some((l) => l.msg === 'watch' && l.deviceId === 'no-such-cam')).toBe(false);
    await screenshot(page, 'unknown-camera');
    expect(page.errors.filter((e) => !e.includes('401'))).toEqual([]); // the wrong password's 401 is logged by Chromium
  });

  it('a token from `tali user token` signs in, limited to its cameras', async () => {
    await tb.bridge.credentials.add('guest', 'viewer');
    const { out } = await tali('user', 'token', 'guest', '--devices', 'cam-2,cam-3', '--ttl', '10m', '--data-dir', tb.dataDir);
    const page = await dashboard('/', { signIn: false });
    await page.fill('input[name=password]', out.trim());
    await page.click('form#login button[type=submit]');
    await page.waitForSelector('#connection[data-state=connected]', { timeout: 10_000 });
    expect(await page.textContent('#who')).toBe('guest');
    await page.waitForSelector(deviceCard('cam-3', 'online'));
    expect(await page.$$eval('li.device', (t) => t.map((x) => (x as HTMLElement).dataset.device))).toEqual(['cam-2', 'cam-3']);
    expect(await page.isHidden('#nav a[data-view=devices]')).toBe(true);
  });

  it('while the bridge is unreachable, cards say "unknown since …" and the player says why it is black', async () => {
    const page = await openPage(browser, `${base}/#/camera/cam-9`);
    onTestFinished(() => page.close());
    // The page's MQTT WebSocket goes through this route: passed to the bridge, or cut and refused while "down".
    let down = false;
    const live = new Set<{ close(): Promise<void> }>();
    await page.routeWebSocket(/\/mqtt$/, (ws) => {
      if (down) return void ws.close();
      ws.connectToServer();
      live.add(ws);
    });
    await signIn(page, 'ops', admin);
    await page.waitForFunction(() => (document.querySelector('video#video') as HTMLVideoElement).currentTime > 0.5, undefined, { timeout: 20_000 });
    down = true;
    await Promise.all([...live].map((ws) => ws.close()));
    await page.waitForSelector('#why[data-reason="unreachable"]', { timeout: 15_000 });
    expect(await page.textContent('#why')).toMatch(/^The bridge is unreachable since /);
    expect(await page.textContent('#health')).toContain('unknown since');
    await screenshot(page, 'unreachable-player');
    await page.click('a.back');
    await page.waitForSelector(deviceCard('cam-9'));
    expect(await page.locator('li.device[data-state="online"]').count()).toBe(0);
    expect(await page.locator('li.device[data-state="unknown"]').count()).toBeGreaterThanOrEqual(FLEET.length);
    expect(await page.textContent(`${deviceCard('cam-9')} .badge`)).toBe('unknown');
    expect(await page.textContent(deviceCard('cam-9'))).toMatch(/unknown since \d\d:\d\d:\d\d: the bridge is unreachable/);
    await screenshot(page, 'unreachable-grid');
    down = false; // the client's next retry gets through: cards are current again
    await page.waitForSelector(deviceCard('cam-9', 'online'), { timeout: 30_000 });
    expect(await page.locator('li.device[data-state="unknown"]').count()).toBe(0);
  });

  it('at phone width the grid is one column and a tapped camera opens with its player in view', async () => {
    const page = await dashboard('/', { width: 390 });
    await page.waitForSelector(deviceCard('cam-12', 'online'));
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.locator(deviceCard('cam-12')).scrollIntoViewIfNeeded();
    expect(await page.evaluate(() => scrollY)).toBeGreaterThan(500); // the tile was far down the grid
    await page.click(deviceCard('cam-12'));
    await page.waitForFunction(() => (document.querySelector('video#video') as HTMLVideoElement).videoWidth > 0, undefined, { timeout: 20_000 });
    const box = await page.locator('video#video').boundingBox();
    expect(box).not.toBeNull();
    expect(box!.y).toBeGreaterThanOrEqual(0);
    expect(box!.y + box!.height).toBeLessThanOrEqual(844);
    expect(box!.width).toBeGreaterThan(300);
    await screenshot(page, 'phone-player');
  });
});
