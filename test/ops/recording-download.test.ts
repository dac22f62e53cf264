/**
 * The recordings API's file route, GET|HEAD /api/recordings/{id}/files/{name}, on a real bridge: whole files and
 * byte ranges (RFC 9110 §14: 206 with Content-Range, 416 with `bytes *​/size`, Accept-Ranges), the content types,
 * who may download (admins, by password or by an unscoped token as the dashboard does), names that are not
 * recordings of that device, and the list entries (start time, duration, size). The file is written by the
 * recorder's own MatroskaWriter from the simulated camera's clip.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadVideoClip } from '../../devices/camera/media/video-source.ts';
import { MatroskaWriter } from '../../src/recording/matroska-writer.ts';
import { recordingName } from '../../src/recording/store.ts';
import { parseRange } from '../../src/recording/download.ts';
import { startBridge } from '../helpers/bridge.ts';
import { probe, SKIP_WITHOUT_FFPROBE } from './ffprobe.ts';

/** The clip (4 s, 120 frames) as a finished recording of cam1 that started at `startedAt`. */
async function recording(dataDir: string, startedAt: Date): Promise<{ path: string; name: string; bytes: Buffer; durationMs: number }> {
  const dir = join(dataDir, 'recordings', 'cam1');
  await mkdir(dir, { recursive: true });
  const name = recordingName('cam1', startedAt, '.webm');
  const writer = new MatroskaWriter(join(dir, name), 'webm', [{ kind: 'video', codecId: 'V_VP8', width: 320, height: 240 }], { startedAt });
  loadVideoClip('VP8').frames.forEach((frame, i) => writer.write(0, (i * 1000) / 30, frame.keyframe, Buffer.from(frame.data)));
  const summary = await writer.finish();
  return { path: join(dir, name), name, bytes: await readFile(join(dir, name)), durationMs: summary!.durationMs };
}

describe('byte ranges (RFC 9110 §14.1.2)', () => {
  it('one range, clamped to the size; unsatisfiable and malformed ones; several ranges or another unit: the whole file', () => {
    expect(parseRange('bytes=0-99', 1000)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=900-', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-100', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
    expect(parseRange('bytes=500-99999', 1000)).toEqual({ start: 500, end: 999 });
    expect(parseRange('Bytes = 1-1', 1000)).toEqual({ start: 1, end: 1 });
    for (const bad of ['bytes=1000-', 'bytes=5-2', 'bytes=-0', 'bytes=abc', 'bytes=', 'bytes=-', 'bytes=1-2-3', 'bytes=99999999999999999999-']) {
      expect(parseRange(bad, 1000), bad).toBe('unsatisfiable');
    }
    expect(parseRange('bytes=0-0', 0)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,5-6', 1000)).toBe('whole');
    expect(parseRange('items=0-1', 1000)).toBe('whole');
    expect(parseRange(undefined, 1000)).toBe('whole');
  });
});

describe.skipIf(SKIP_WITHOUT_FFPROBE)('downloading a recording', () => {
  it('whole or by range, listed with start time, duration and size; admins only; nothing outside the recordings', async () => {
    const tb = await startBridge();
    const startedAt = new Date(Date.now() - 60_000);
    const file = await recording(tb.dataDir, startedAt);
    const size = file.bytes.length;
    const admin = await tb.bridge.credentials.add('ops', 'admin');
    const viewer = await tb.bridge.credentials.add('dash', 'viewer');
    const basic = (user: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}` });
    const base = `http://127.0.0.1:${tb.bridge.httpPort}/api/recordings`;
    const url = `${base}/cam1/files/${file.name}`;
    const get = (headers: Record<string, string> = {}, method = 'GET') => fetch(url, { method, headers: { ...basic('ops', admin), ...headers } });

    expect(file.durationMs).toBeCloseTo(4000, -1);
    const listed = (await (await fetch(`${base}/cam1`, { headers: basic('ops', admin) })).json()) as { files: Record<string, unknown>[] };
    expect(listed.files).toEqual([{ deviceId: 'cam1', name: file.name, bytes: size, startedAt: startedAt.toISOString(), durationMs: file.durationMs, modified: expect.any(String) }]);
    const all = (await (await fetch(base, { headers: basic('ops', admin) })).json()) as { files: Record<string, unknown>[] };
    expect(all.files).toEqual(listed.files);

    const whole = await get();
    expect(whole.status).toBe(200);
    expect(Object.fromEntries(['content-type', 'content-length', 'accept-ranges', 'x-content-type-options'].map((h) => [h, whole.headers.get(h)]))).toEqual({
      'content-type': 'video/webm',
      'content-length': String(size),
      'accept-ranges': 'bytes',
      'x-content-type-options': 'nosniff',
    });
    expect(Buffer.from(await whole.arrayBuffer()).equals(file.bytes)).toBe(true);
    expect(whole.headers.get('content-disposition')).toBe(`inline; filename="${file.name}"`);
    expect((await get({}, 'HEAD')).headers.get('content-length')).toBe(String(size));
    expect((await fetch(`${url}?download=1`, { headers: basic('ops', admin) })).headers.get('content-disposition')).toBe(`attachment; filename="${file.name}"`);

    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      ['bytes=100-', 100, size - 1],
      ['bytes=-50', size - 50, size - 1],
      [`bytes=${size - 10}-${size + 1000}`, size - 10, size - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await get({ range });
      expect(res.status, range).toBe(206);
      expect(res.headers.get('content-range'), range).toBe(`bytes ${start}-${end}/${size}`);
      expect(res.headers.get('content-length'), range).toBe(String(end - start + 1));
      expect(Buffer.from(await res.arrayBuffer()).equals(file.bytes.subarray(start, end + 1)), range).toBe(true);
    }
    for (const range of [`bytes=${size}-`, 'bytes=9-3', 'bytes=x-y', 'bytes=-0']) {
      const res = await get({ range });
      expect(res.status, range).toBe(416);
      expect(res.headers.get('content-range'), range).toBe(`bytes */${size}`);
      expect(res.headers.get('accept-ranges'), range).toBe('bytes');
    }
    expect((await get({ range: 'bytes=0-1,4-5' })).status).toBe(200);
    // If-Range (RFC 9110 §13.1.5): the range only while the file is the one the client has part of.
    expect((await get({ range: 'bytes=0-9', 'if-range': whole.headers.get('etag')! })).status).toBe(206);
    expect((await get({ range: 'bytes=0-9', 'if-range': '"older"' })).status).toBe(200);

    // Playable as downloaded (a player fetches ranges of the same bytes).
    const copy = join(tb.dataDir, 'copy.webm');
    await writeFile(copy, Buffer.from(await (await get()).arrayBuffer()));
    expect((await probe(copy)).streams[0]).toMatchObject({ codec: 'vp8', frames: 120 });

    // The dashboard's way in: an admin's token for every device (Bearer), no password kept.
    const issued = await fetch(`http://127.0.0.1:${tb.bridge.httpPort}/api/token`, {
      method: 'POST',
      headers: { ...basic('ops', admin), 'content-type': 'application/json' },
      body: '{}',
    });
    const { token } = (await issued.json()) as { token: string };
    expect((await fetch(url, { headers: { authorization: `Bearer ${token}`, range: 'bytes=0-3' } })).status).toBe(206);
    // …and in the URL, what a <video src> can carry.
    const inUrl = await fetch(`${url}?access_token=${encodeURIComponent(token)}`, { headers: { range: 'bytes=0-3' } });
    expect(inUrl.status).toBe(206);
    expect(inUrl.headers.get('cache-control')).toBe('private, no-store');

    // Who may not: nobody signed in (401, no browser login dialog), a viewer (403).
    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBeNull();
    expect((await fetch(url, { headers: basic('dash', viewer) })).status).toBe(403);

    // Only finished recordings of that device, by their name.
    for (const path of [
      `${base}/cam2/files/${file.name}`,
      `${base}/cam1/files/nothing.webm`,
      `${base}/cam1/files/..%2F..%2Fidentities.json`,
      `${base}/cam1/files/%2e%2e`,
      `${base}/cam1/files/${file.name}.part`,
    ]) {
      const res = await fetch(path, { headers: basic('ops', admin) });
      expect(res.status, path).toBe(404);
      expect(await res.json(), path).toMatchObject({ error: 'TALI_ERR_NOT_FOUND' });
    }
    // A malformed escape is a bad request (the HTTP server says so for every route), never a 500.
    for (const path of [`${base}/cam1/files/%E0%A4%A`, `${base}/%E0%A4%A/files/x.webm`]) {
      expect((await fetch(path, { headers: basic('ops', admin) })).status, path).toBe(400);
    }
    expect((await fetch(url, { method: 'DELETE', headers: { ...basic('ops', admin), 'x-tali-request': '1' } })).status).toBe(405);
  });
});
