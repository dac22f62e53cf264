/**
 * Debian's Chromium driven by playwright-core, for the end-to-end tests: one persistent context per launch (a fresh
 * profile in a temporary directory), screenshots under test-output/screenshots/, and the check that Chromium is
 * there. With CI=true a missing Chromium fails the tests; elsewhere they are skipped with the install command.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.TALI_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(import.meta.dirname, '../../test-output/screenshots');

/** True when the tests can run; false (skip) only outside CI. Throws in CI when Chromium is missing. */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `Chromium not found at ${CHROMIUM}: apt-get install -y chromium`;
  if (process.env.CI === 'true') throw new Error(message);
  console.warn(`skipping browser tests. ${message}`);
  return false;
}

const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Background tabs are throttled: two dashboards in one browser must both keep decoding.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

export interface LaunchOptions {
  /**
   * 'mdns': what real users' browsers do, host candidates as `<uuid>.local` names. 'raw-ip': raw IP host candidates
   * (the fake-UI flag alone does that; the feature switch makes it explicit).
   */
  candidates: 'mdns' | 'raw-ip';
  /** Chromium's fake camera and microphone, with permission granted (implies raw IPs). */
  fakeCamera?: boolean;
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

export async function launch(options: LaunchOptions): Promise<Browser> {
  if (options.fakeCamera && options.candidates === 'mdns') throw new Error('the fake-UI flag makes Chromium hand out raw IPs');
  const profile = await mkdtemp(join(tmpdir(), 'tali-chromium-'));
  const args = [...BASE_FLAGS];
  if (options.fakeCamera) args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream');
  if (options.candidates === 'raw-ip') args.push('--disable-features=WebRtcHideLocalIpsWithMdns');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args,
    viewport: { width: 1200, height: 900 },
    ignoreHTTPSErrors: true, // the https:// test bridge has a self-signed certificate
  });
  let closed: Promise<void> | undefined;
  return {
    context,
    close: () =>
      (closed ??= (async () => {
        await context.close().catch(() => {});
        await rm(profile, { recursive: true, force: true });
      })()),
  };
}

/** A new page that records console errors and page errors (a test can assert there were none). */
export async function openPage(browser: Browser, url: string): Promise<Page & { errors: string[] }> {
  const page = (await browser.context.newPage()) as Page & { errors: string[] };
  page.errors = [];
  page.on('pageerror', (err) => page.errors.push(err.message));
  page.on('console', (message) => {
    if (message.type() === 'error') page.errors.push(message.text());
  });
  await page.goto(url);
  return page;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}
