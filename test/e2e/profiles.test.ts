/**
 * The profiles in Debian's Chromium. A libpeer camera is watched on the dashboard over HTTPS/WSS like any camera.
 * WHEP from a page with no tali code: plain RTCPeerConnection + fetch, as any WHEP player page
 * is written from the draft, served by a tiny separate HTTP server (another origin, so CORS is exercised). The page
 * offers at once and trickles its candidates with PATCH (If-Match: the ETag), plays the camera with a token scoped
 * to it, is refused another camera's token (403) and an expired one (401), and DELETEs its session. The cameras: a
 * native simulated one (VP8) and a libpeer device (H264 + PCMA) on a TLS bridge.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startBridge } from '../helpers/bridge.ts';
import { until, waitFor } from '../helpers/wait.ts';
import { startCamera } from '../devices/helpers.ts';
import { startLibpeerDevice, tlsBridge, viewerToken } from '../profiles/helpers.ts';
import { chromiumAvailable, launch, openPage, screenshot, type Browser } from './browser.ts';
import { deviceCard, signIn, watchAndPlay } from './pages.ts';

const available = chromiumAvailable();

/** The whole player: what a WHEP page needs, from the draft (§4.2, §4.4.2, §4.5), and nothing of tali's. */
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>WHEP player</title></head><body>
<video id="v" autoplay muted playsinline></video>
<script>
  window.log = [];
  window.play = async (endpoint, token) => {
    const headers = { authorization: 'Bearer ' + token };
    const pc = new RTCPeerConnection();
    window.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (e) => { document.getElementById('v').srcObject = e.streams[0] || new MediaStream([e.track]); };
    const pending = [];
    let session;
    const patch = (lines) => fetch(session.url, { method: 'PATCH', headers: { ...headers, 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': session.etag },
      body: 'm=video 9 UDP/TLS/RTP/SAVPF 0\\r\\na=mid:0\\r\\n' + lines.join('') }).then((r) => window.log.push('PATCH ' + r.status));
    pc.onicecandidate = (e) => {
      const line = e.candidate ? 'a=' + e.candidate.candidate + '\\r\\n' : 'a=end-of-candidates\\r\\n';
      if (session) patch([line]); else pending.push(line);
    };
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(endpoint, { method: 'POST', headers: { ...headers, 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
    window.log.push('POST ' + res.status);
    if (res.status !== 201) { pc.close(); return res.status; }
    session = { url: new URL(res.headers.get('location'), endpoint).toString(), etag: res.headers.get('etag') };
    window.session = session;
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    if (pending.length > 0) patch(pending.splice(0));
    return res.status;
  };
  window.stop = async (token) => {
    const res = await fetch(window.session.url, { method: 'DELETE', headers: { authorization: 'Bearer ' + token } });
    window.pc.close();
    return res.status;
  };
</script></body></html>`;


describe.skipIf(!available)('libpeer and WHEP in Chromium', { timeout: 90_000 }, () => {
  let browser: Browser;
  let site: Server;
  let siteUrl: string;

  beforeAll(async () => {
    site = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE));
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://localhost:${(site.address() as AddressInfo).port}/`;
    browser = await launch({ candidates: 'raw-ip' });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => site?.close(resolve));
  });

  async function plays(page: Page, seconds: number): Promise<void> {
    await page.waitForFunction((s) => {
      const v = document.getElementById('v') as HTMLVideoElement;
      return v.videoWidth > 0 && v.currentTime > s;
    }, seconds, { timeout: 30_000 });
  }

  it('WHEP plays a camera with a token scoped to it; another camera\'s token gets 403, an expired one 401; DELETE ends it', async () => {
    const tb = await startBridge();
    await startCamera(tb, 'mqtt', { codec: 'VP8' });
    await tb.bridge.credentials.add('alice', 'viewer');
    const endpoint = `http://127.0.0.1:${tb.bridge.httpPort}/whep/cam1`;
    const page = await openPage(browser, siteUrl);
    expect(await page.evaluate(([e, t]) => (window as unknown as { play: (e: string, t: string) => Promise<number> }).play(e as string, t as string), [endpoint, await viewerToken(tb, 'alice', ['cam2'], 300)])).toBe(403);
    expect(await page.evaluate(([e, t]) => (window as unknown as { play: (e: string, t: string) => Promise<number> }).play(e as string, t as string), [endpoint, await viewerToken(tb, 'alice', ['cam1'], -5)])).toBe(401);
    expect(tb.bridge.relay.viewers.size).toBe(0);
    expect(await page.evaluate(([e, t]) => (window as unknown as { play: (e: string, t: string) => Promise<number> }).play(e as string, t as string), [endpoint, await viewerToken(tb, 'alice', ['cam1'], 300)])).toBe(201);
    await plays(page, 1);
    await screenshot(page, 'whep-chromium');
    const log = await page.evaluate(() => (window as unknown as { log: string[] }).log);
    expect(log).toContain('PATCH 204'); // trickled candidates taken
    expect(log.filter((l) => l.startsWith('PATCH') && l !== 'PATCH 204')).toEqual([]);
    // Chromium logs the two refused POSTs; nothing else went wrong in the page.
    expect(page.errors.filter((e) => !/status of 40[13]/.test(e))).toEqual([]);
    expect(await page.evaluate((t) => (window as unknown as { stop: (t: string) => Promise<number> }).stop(t), await viewerToken(tb, 'alice', ['cam1'], 300))).toBe(200);
    await until(() => tb.bridge.relay.viewers.size === 0, 5000, 'the WHEP session to end');
    await page.close();
  });

  // A WHEP player has no signalling channel to hear a bye on: when the bridge ends its session (here: its user is
  // removed, RFC 7675 §5.2), the DTLS close_notify the bridge now sends (RFC 5246 §7.2.1, patches/werift+0.25.2.patch
  // [werift-dtls-close]) is how it learns at once. Without it Chromium's DTLS transport stayed `connected` until
  // consent freshness gave up on the silent bridge (RFC 7675 §5.1: 30 s).
  it('a WHEP player sees the bridge end its session at once: its DTLS transport closes while ICE is still up', async () => {
    const tb = await startBridge();
    await startCamera(tb, 'mqtt', { codec: 'VP8' });
    await tb.bridge.credentials.add('alice', 'viewer');
    const page = await openPage(browser, siteUrl);
    const endpoint = `http://127.0.0.1:${tb.bridge.httpPort}/whep/cam1`;
    expect(await page.evaluate(([e, t]) => (window as unknown as { play: (e: string, t: string) => Promise<number> }).play(e as string, t as string), [endpoint, await viewerToken(tb, 'alice', ['cam1'], 300)])).toBe(201);
    await plays(page, 1);
    await page.evaluate(() => {
      const w = window as unknown as { pc: RTCPeerConnection; dtls: { dtls: string; ice: string }[] };
      const transport = w.pc.getReceivers()[0]!.transport!;
      w.dtls = [];
      transport.addEventListener('statechange', () => w.dtls.push({ dtls: transport.state, ice: transport.iceTransport.state }));
    });
    const [viewer] = [...tb.bridge.relay.viewers.values()];
    const closed = waitFor(viewer!, 'closed');
    await tb.bridge.credentials.remove('alice');
    await closed;
    await page.waitForFunction(() => (window as unknown as { dtls: unknown[] }).dtls.length > 0, undefined, { timeout: 10_000 });
    expect((await page.evaluate(() => (window as unknown as { dtls: unknown[] }).dtls))[0]).toEqual({ dtls: 'closed', ice: 'connected' });
    await page.close();
  });

  it('the dashboard lists a libpeer camera online and plays it (H264 over wss://)', async () => {
    const tb = await tlsBridge();
    await startLibpeerDevice(tb, 'cam-lp1');
    const password = await tb.bridge.credentials.add('alice', 'viewer');
    const page = await openPage(browser, `https://localhost:${tb.bridge.httpPort}/`);
    await signIn(page, 'alice', password);
    await page.waitForSelector(deviceCard('cam-lp1', 'online'), { timeout: 15_000 });
    expect((await watchAndPlay(page, 'cam-lp1')).videoWidth).toBeGreaterThan(0);
    await screenshot(page, 'dashboard-libpeer');
    await page.close();
  });

  it('WHEP plays a libpeer camera (H264 + PCMA) over HTTPS: firmware and player both unchanged', async () => {
    const tb = await tlsBridge();
    await startLibpeerDevice(tb, 'cam-lp1');
    await tb.bridge.credentials.add('alice', 'viewer');
    const page = await openPage(browser, siteUrl);
    const endpoint = `https://127.0.0.1:${tb.bridge.httpPort}/whep/cam-lp1`;
    expect(await page.evaluate(([e, t]) => (window as unknown as { play: (e: string, t: string) => Promise<number> }).play(e as string, t as string), [endpoint, await viewerToken(tb, 'alice', ['cam-lp1'], 300)])).toBe(201);
    await plays(page, 1);
    expect(page.errors).toEqual([]);
    await page.close();
  });
});
