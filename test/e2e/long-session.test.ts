/**
 * A browser session longer than every keepalive: Chromium runs the browser camera page (/camera) and a dashboard that
 * watches it, against a real bridge, for 120 s. Both pages' MQTT keepalive is 30 s, so the broker drops a page whose
 * pings stop after 45 s (MQTT-3.1.2-24); a session of 120 s sees that happen twice over. mqtt.js runs its keepalive
 * timer in a Worker made from a blob: URL, which a Content-Security-Policy without `worker-src blob:` silently
 * blocks: the pages then went offline every ~45 s.
 *
 * One long test on purpose (suite time), with soft assertions so that a failure lists everything that broke: the
 * video kept advancing, one watch and one camera session all along, no MQTT connection of either page closed, the
 * camera card never anything but online, and no page error (a CSP violation is logged as one). Before the fix it
 * failed on all but the watch count: the camera's connection closed twice, three camera sessions, five offline
 * cards, and a CSP error on each page.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Page } from 'playwright-core';
import { createBridge, type TestBridge } from '../helpers/bridge.ts';
import { chromiumAvailable, launch, openPage, screenshot, type Browser } from './browser.ts';
import { deviceCard, pageState, signIn, startBrowserCamera, watchAndPlay } from './pages.ts';

const available = chromiumAvailable();
const SESSION_S = 120;
const CHECK_EVERY_S = 20;

/** Records every change of a `data-state` attribute in the page (element ID or device), to assert on afterwards. */
async function recordStates(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { taliStates: string[] }).taliStates = seen;
    new MutationObserver((mutations) => {
      for (const m of mutations) {
        const node = m.target as HTMLElement;
        seen.push(`${node.id || node.dataset.device || node.tagName}=${node.dataset.state ?? ''}`);
      }
    }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-state'] });
  });
}

async function recordedStates(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { taliStates: string[] }).taliStates);
}

describe.skipIf(!available)('a 120 s browser session', () => {
  let tb: TestBridge & { close: () => Promise<void> };
  let browser: Browser;

  beforeAll(async () => {
    tb = await createBridge();
    browser = await launch({ candidates: 'raw-ip', fakeCamera: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await tb?.close();
  });

  it('the /camera page and a dashboard watching it stay connected and playing, without a reconnect', { timeout: (SESSION_S + 60) * 1000 }, async () => {
    const camSecret = await tb.bridge.credentials.add('cam-long', 'device');
    const password = await tb.bridge.credentials.add('alice', 'viewer');
    const closed: string[] = [];
    const onGone = (clientId: string) => closed.push(clientId);
    tb.bridge.broker.on('clientGone', onGone);
    onTestFinished(() => void tb.bridge.broker.off('clientGone', onGone));

    const camera = await openPage(browser, `http://127.0.0.1:${tb.bridge.httpPort}/camera`);
    onTestFinished(() => camera.close());
    await startBrowserCamera(camera, 'cam-long', camSecret);
    await recordStates(camera);

    const dashboard = await openPage(browser, `http://127.0.0.1:${tb.bridge.httpPort}/`);
    onTestFinished(() => dashboard.close());
    await signIn(dashboard, 'alice', password);
    await dashboard.waitForSelector(deviceCard('cam-long', 'online'));
    await recordStates(dashboard);
    const start = (await watchAndPlay(dashboard, 'cam-long', 0)).currentTime;

    // The video's clock, checked every 20 s of it: it advances with wall time while the stream flows, and stops
    // (or restarts from 0 with a new stream) when the watch is lost.
    for (let at = CHECK_EVERY_S; at <= SESSION_S; at += CHECK_EVERY_S) {
      await dashboard
        .waitForFunction((t) => (document.querySelector('video#video') as HTMLVideoElement).currentTime >= t, start + at, { timeout: (CHECK_EVERY_S + 15) * 1000 })
        .catch(async (err: Error) => {
          throw new Error(`video stalled before ${at} s: ${err.message}\n${JSON.stringify({ closed, page: await pageState(dashboard), states: await recordedStates(dashboard) })}`);
        });
    }
    await screenshot(dashboard, 'long-session-dashboard');
    await screenshot(camera, 'long-session-camera');

    expect.soft(closed).toEqual([]); // no MQTT connection of either page ended
    expect.soft(await dashboard.locator('#log li.out[data-type=watch]').count()).toBe(1);
    expect.soft(tb.logs.filter((l) => l.msg === 'watch' && l.deviceId === 'cam-long')).toHaveLength(1);
    expect.soft(tb.logs.filter((l) => l.msg === 'offer received' && l.deviceId === 'cam-long')).toHaveLength(1);
    // The card, the dashboard's connection and the camera page's MQTT and session badges never left their state.
    expect.soft((await recordedStates(dashboard)).filter((s) => /^(cam-long|connection)=/.test(s) && !/=(online|connected)$/.test(s))).toEqual([]);
    expect.soft((await recordedStates(camera)).filter((s) => /^(mqtt|session)=/.test(s))).toEqual([]);
    expect.soft(await camera.getAttribute('#session', 'data-state')).toBe('connected');
    expect.soft(dashboard.errors).toEqual([]);
    expect.soft(camera.errors).toEqual([]);
  });
});
