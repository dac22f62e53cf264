/**
 * Recording on a real bridge: a camera (werift, the simulated camera's clips and tone) streams for a few seconds;
 * the files are finalised on close, split on keyframes, and read back by ffprobe (duration, codecs, frame counts).
 * On demand through the admin API, with its authentication and errors.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Session } from '../../src/answerer/session.ts';
import { startBridge, type TestBridge } from '../helpers/bridge.ts';
import { until, waitFor } from '../helpers/wait.ts';
import { startStreamingCamera, type StreamingCamera } from './camera.ts';
import { probe, SKIP_WITHOUT_FFPROBE } from './ffprobe.ts';
import { scrape, untilReceived } from './prometheus.ts';

async function stream(tb: TestBridge, options: { codec?: 'VP8' | 'H264'; audio?: 'PCMU' | 'PCMA' } = {}) {
  const secret = await tb.bridge.credentials.add('cam1', 'device', { replace: true });
  const opened = waitFor<[Session]>(tb.bridge.answerer, 'session');
  const camera = await startStreamingCamera({ url: tb.bridge.mqttUrl, id: 'cam1', secret, ...options });
  const [session] = await opened;
  return { camera, session };
}

/**
 * Lets the camera send `frames` more frames (30 per second), then waits until the bridge has received every video
 * packet sent: a media worker behind on its socket (a loaded machine) would otherwise stop or close the recording with
 * part of them unread, and a recording rightly ends where the reading did (1.466 s of 2 s seen in a full suite).
 */
async function streamFor(tb: TestBridge, camera: StreamingCamera, frames: number): Promise<void> {
  const target = camera.video.framesSent + frames;
  await until(() => camera.video.framesSent >= target, frames * 100, `${frames} frames sent`);
  const sent = camera.video.packetsSent;
  await untilReceived(tb.bridge.httpPort, sent);
}

async function endSession(camera: StreamingCamera, session: Session): Promise<void> {
  const closed = waitFor(session, 'closed');
  await camera.client.publishAsync(
    `tali/v1/device/${camera.id}/up`,
    JSON.stringify({ v: 1, type: 'bye', sessionId: camera.sessionId, seq: 2, ts: Date.now(), reason: 'normal' }),
    { qos: 1 },
  );
  await closed;
}

function basic(user: string, secret: string): Record<string, string> {
  // x-tali-request: what a page of the bridge sends on state-changing calls, and a form on another site cannot.
  return { authorization: `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`, 'x-tali-request': '1' };
}

describe.skipIf(SKIP_WITHOUT_FFPROBE)('recording a camera', () => {
  it('VP8 + PCMU, always on: files split on keyframes, finalised on close, and they play', async () => {
    const tb = await startBridge({ record: 'cam1', recordSegmentMs: 2000 });
    const { camera, session } = await stream(tb, { codec: 'VP8', audio: 'PCMU' });
    await streamFor(tb, camera, 150); // 5 s
    await endSession(camera, session);
    await tb.bridge.recorder.close();

    const dir = join(tb.dataDir, 'recordings', 'cam1');
    const names = (await readdir(dir)).sort();
    expect(names.every((n) => /^cam1-\d{8}T\d{9}Z\.mkv$/.test(n)), names.join()).toBe(true); // no .part left
    expect(names.length).toBeGreaterThanOrEqual(2);
    let frames = 0;
    let seconds = 0;
    for (const name of names) {
      const info = await probe(join(dir, name));
      expect(info.startsOnKeyframe, name).toBe(true);
      expect(info.streams.map((s) => s.codec), name).toEqual(['vp8', 'pcm_s16le']);
      expect(info.streams[0], name).toMatchObject({ width: 320, height: 240 });
      expect(info.streams[1], name).toMatchObject({ sampleRate: 8000, channels: 1 });
      // 30 fps: the frame count and the duration agree within a frame or two.
      expect(Math.abs(info.streams[0]!.frames / 30 - info.durationS), name).toBeLessThan(0.2);
      frames += info.streams[0]!.frames;
      seconds += info.durationS;
    }
    // The camera sent ~5 s; the recording starts at the first keyframe after the session opened.
    expect(seconds).toBeGreaterThan(3.5);
    expect(seconds).toBeLessThan(6.5);
    expect(frames).toBeGreaterThan(100);
    expect(camera.keyframeRequests()).toBeGreaterThanOrEqual(2); // the session's first, and one per new file
    const metrics = await scrape(`http://127.0.0.1:${tb.bridge.httpPort}/metrics`);
    expect(metrics.value('tali_recording_files_total')).toBe(names.length);
    expect(metrics.value('tali_recordings_active')).toBe(0);
    expect(metrics.value('tali_keyframe_requests_total', { reason: 'recording' })).toBeGreaterThanOrEqual(1);
  });

  it('H264 + PCMA: one file with the stream and its audio', async () => {
    const tb = await startBridge({ record: '*' });
    const { camera, session } = await stream(tb, { codec: 'H264', audio: 'PCMA' });
    await streamFor(tb, camera, 90);
    await endSession(camera, session);
    await tb.bridge.recorder.close();
    const files = await tb.bridge.recorder.files('cam1');
    expect(files).toHaveLength(1);
    const info = await probe(files[0]!.path);
    expect(info.streams.map((s) => s.codec)).toEqual(['h264', 'pcm_s16le']);
    expect(info.streams[0]).toMatchObject({ width: 320, height: 240 });
    expect(info.durationS).toBeGreaterThan(2);
    expect(info.startsOnKeyframe).toBe(true);
  });

  it('on demand: POST starts, DELETE stops and finalises; admins only; configured devices cannot be stopped', async () => {
    const tb = await startBridge({ record: 'cam9' });
    const api = `http://127.0.0.1:${tb.bridge.httpPort}/api/recordings`;
    const admin = await tb.bridge.credentials.add('ops', 'admin');
    const viewer = await tb.bridge.credentials.add('dash', 'viewer');
    const { camera } = await stream(tb, { codec: 'VP8' });

    const post = { method: 'POST', headers: { 'x-tali-request': '1' } };
    const anonymous = await fetch(`${api}/cam1`, { method: 'POST', headers: { 'x-tali-request': '1' } });
    expect(anonymous.status).toBe(401);
    // Issue 11 #14: no WWW-Authenticate, so browsers never cache a password that forged requests would then carry.
    expect(anonymous.headers.get('www-authenticate')).toBeNull();
    expect((await fetch(`${api}/cam1`, { method: 'POST', headers: basic('ops', 'wrong') })).status).toBe(401);
    expect((await fetch(`${api}/cam1`, { method: 'POST', headers: basic('dash', viewer) })).status).toBe(403);
    // A form on another site, with the admin's credentials (cached by the browser): refused, nothing starts.
    const forged = await fetch(`${api}/cam1`, { method: 'POST', headers: { ...basic('ops', admin), origin: 'http://evil.example' } });
    expect(forged.status).toBe(403);
    expect(await forged.json()).toMatchObject({ error: 'TALI_ERR_FORBIDDEN' });
    const { 'x-tali-request': _, ...plain } = basic('ops', admin);
    expect((await fetch(`${api}/cam1`, { method: 'POST', headers: { ...plain, 'content-type': 'application/x-www-form-urlencoded' } })).status).toBe(403);
    expect(tb.bridge.recorder.statuses().map((r) => r.deviceId)).toEqual(['cam9']);

    const started = await fetch(`${api}/cam1`, { method: 'POST', headers: { ...post.headers, ...basic('ops', admin) } });
    expect(started.status).toBe(202);
    expect(await started.json()).toMatchObject({ deviceId: 'cam1', mode: 'on-demand' });
    await until(() => tb.bridge.recorder.status('cam1').recording, 5000, 'recording to start on a keyframe');
    await streamFor(tb, camera, 60);
    const stopped = await fetch(`${api}/cam1`, { method: 'DELETE', headers: { ...post.headers, ...basic('ops', admin) } });
    expect(stopped.status).toBe(200);
    expect(await stopped.json()).toEqual({ deviceId: 'cam1', mode: 'on-demand', recording: false });

    const listed = await fetch(api, { headers: basic('ops', admin) });
    const body = (await listed.json()) as { recordings: { deviceId: string }[]; files: { deviceId: string; name: string; bytes: number }[] };
    expect(body.recordings.map((r) => r.deviceId)).toEqual(['cam9']);
    expect(body.files).toEqual([expect.objectContaining({ deviceId: 'cam1', name: expect.stringMatching(/\.webm$/) })]);
    const info = await probe(join(tb.dataDir, 'recordings', 'cam1', body.files[0]!.name));
    expect(info.streams).toEqual([expect.objectContaining({ codec: 'vp8' })]);
    expect(info.durationS).toBeGreaterThan(1.5);

    const configured = await fetch(`${api}/cam9`, { method: 'DELETE', headers: { ...post.headers, ...basic('ops', admin) } });
    expect(configured.status).toBe(409);
    expect(await configured.json()).toMatchObject({ error: 'TALI_ERR_RECORDING_CONFIGURED' });
    expect((await fetch(`${api}/not%20an%20id`, { headers: basic('ops', admin) })).status).toBe(404);
    expect((await fetch(`${api}/cam1`, { method: 'PUT', headers: { ...post.headers, ...basic('ops', admin) } })).status).toBe(405);
  });

  it('admin API logins: failures are logged and throttled per address (429 after ten, no password check)', async () => {
    const tb = await startBridge();
    const api = `http://127.0.0.1:${tb.bridge.httpPort}/api/recordings`;
    const admin = await tb.bridge.credentials.add('ops', 'admin');
    for (let i = 0; i < 10; i++) expect((await fetch(api, { headers: basic('ops', `wrong${i}`) })).status).toBe(401);
    // Even the right secret waits now: the address used up its failures.
    const throttled = await fetch(api, { headers: basic('ops', admin) });
    expect(throttled.status).toBe(429);
    expect(await throttled.json()).toMatchObject({ error: 'TALI_ERR_RATE_LIMITED' });
    const failures = tb.logs.filter((l) => l.event === 'auth_failed' && l.transport === 'http');
    expect(failures).toHaveLength(11);
    expect(failures[0]).toMatchObject({ username: 'ops', status: 401, address: expect.any(String) });
    expect(JSON.stringify(failures)).not.toContain('wrong0');
  });
});
