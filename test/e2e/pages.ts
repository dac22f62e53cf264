/**
 * What the end-to-end tests do on the two pages the bridge serves, as a person would: fill the forms, click, and
 * wait for what the page shows (DOM conditions with timeouts, never sleeps).
 */
import type { Page } from 'playwright-core';

/** The browser camera: log in as a device and wait until its session streams. */
export async function startBrowserCamera(page: Page, deviceId: string, secret: string, codec: 'VP8' | 'H264' = 'VP8'): Promise<void> {
  await page.fill('input[name=deviceId]', deviceId);
  await page.fill('input[name=secret]', secret);
  await page.selectOption('select[name=codec]', codec);
  await page.click('#start');
  await page.waitForSelector('#session[data-state=connected]', { timeout: 15_000 });
}

/** Signs in with short-lived tokens, or with the password kept (what an admin needs to read cameras' signaling). */
export async function signIn(page: Page, user: string, password: string, options: { keepPassword?: boolean } = {}): Promise<void> {
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  await page.setChecked('input[name=keep]', options.keepPassword ?? false);
  await page.click('form#login button[type=submit]');
  await page.waitForSelector('#connection[data-state=connected]', { timeout: 10_000 });
}

export function deviceCard(deviceId: string, state?: 'online' | 'offline'): string {
  return `li.device[data-device="${deviceId}"]${state ? `[data-state="${state}"]` : ''}`;
}

export interface Playback {
  videoWidth: number;
  currentTime: number;
  framesDecoded: number;
  totalVideoFrames: number;
  /** ms from the click to the first painted frame, from the dashboard's own timeline. */
  firstFrameMs: number;
  /** The dashboard's negotiation timeline: step → ms since the click. */
  timeline: Record<string, number>;
}

export async function playback(page: Page): Promise<Playback> {
  return page.evaluate(() => {
    const video = document.querySelector('video#video') as HTMLVideoElement;
    const numbers = document.getElementById('numbers') as HTMLElement;
    const first = document.querySelector('#timeline [data-step=firstFrame]') as HTMLElement | null;
    return {
      videoWidth: video.videoWidth,
      currentTime: video.currentTime,
      framesDecoded: Number(numbers.dataset.framesDecoded ?? 0),
      totalVideoFrames: video.getVideoPlaybackQuality().totalVideoFrames,
      firstFrameMs: Number(first?.dataset.ms ?? Number.NaN),
      timeline: Object.fromEntries(
        [...document.querySelectorAll<HTMLElement>('#timeline [data-ms]')].map((li) => [li.dataset.step ?? '', Number(li.dataset.ms)]),
      ),
    };
  });
}

/**
 * Clicks the camera and waits until the video plays: a size, time advancing past `seconds`, and frames decoded (the
 * getStats() counter the dashboard shows) and painted (getVideoPlaybackQuality) both still rising.
 */
export async function watchAndPlay(page: Page, deviceId: string, seconds = 1): Promise<Playback> {
  await page.click(deviceCard(deviceId));
  await page
    .waitForFunction(
      (s) => {
        const video = document.querySelector('video#video') as HTMLVideoElement;
        return video.videoWidth > 0 && video.currentTime > s && Number(document.getElementById('numbers')?.dataset.framesDecoded ?? 0) > 0;
      },
      seconds,
      { timeout: 25_000 }, // generous: CI runs another test file beside this one on two cores
    )
    .catch(async (err: Error) => {
      throw new Error(`${err.message}\nthe page showed: ${JSON.stringify(await pageState(page))}`);
    });
  const before = await playback(page);
  await page.waitForFunction(
    ([decoded, painted]) =>
      Number(document.getElementById('numbers')?.dataset.framesDecoded ?? 0) > decoded &&
      (document.querySelector('video#video') as HTMLVideoElement).getVideoPlaybackQuality().totalVideoFrames > painted,
    [before.framesDecoded, before.totalVideoFrames] as const,
    { timeout: 20_000 },
  );
  const after = await playback(page);
  return { ...after, firstFrameMs: before.firstFrameMs, timeline: before.timeline };
}

/** The ICE candidates this page sent for its watch, as the signaling log shows them. */
export async function sentCandidates(page: Page): Promise<string[]> {
  return page.$$eval('#log li.out[data-type=candidate]', (rows) => rows.map((row) => row.textContent ?? ''));
}

/** What the dashboard shows about its watch, for failure messages. */
export async function pageState(page: Page): Promise<Record<string, unknown>> {
  return page.evaluate(() => {
    const video = document.querySelector('video#video') as HTMLVideoElement;
    return {
      watch: document.getElementById('watch-state')?.textContent,
      stream: document.getElementById('stream-state')?.textContent,
      video: { width: video.videoWidth, time: video.currentTime, readyState: video.readyState },
      numbers: { ...(document.getElementById('numbers') as HTMLElement).dataset },
      timeline: document.getElementById('timeline')?.textContent,
      log: [...document.querySelectorAll('#log li')].slice(-10).map((li) => li.textContent),
    };
  });
}
