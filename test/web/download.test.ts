/**
 * A recording's file over HTTP (src/recording/download.ts): single byte ranges as RFC 9110 §14 says, 416 past the
 * end, names that cannot leave the device's directory, never a `.part`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { isRecordingName, parseRange, serveRecording } from '../../src/recording/download.ts';

it('parseRange: a-b, a-, -n; past the end is unsatisfiable; anything else serves the whole file', () => {
  expect(parseRange('bytes=0-99', 1000)).toEqual([0, 99]);
  expect(parseRange('bytes=900-', 1000)).toEqual([900, 999]);
  expect(parseRange('bytes=990-2000', 1000)).toEqual([990, 999]);
  expect(parseRange('bytes=-100', 1000)).toEqual([900, 999]);
  expect(parseRange('bytes=-5000', 1000)).toEqual([0, 999]);
  expect(parseRange('bytes=1000-', 1000)).toBe('unsatisfiable');
  expect(parseRange('bytes=-0', 1000)).toBe('unsatisfiable');
  for (const header of [undefined, 'bytes=0-1,5-6', 'items=0-1', 'bytes=9-3', 'bytes=-']) expect(parseRange(header, 1000)).toBeUndefined();
});

it('names: only finished .webm/.mkv files of the device', () => {
  expect(isRecordingName('cam1-20261206T211801665Z.webm')).toBe(true);
  expect(isRecordingName('cam1-20261206T211801665Z.mkv')).toBe(true);
  for (const bad of ['x.webm.part', '../cam2/x.webm', '.webm', 'x..webm', 'a/b.webm', 'x.txt']) expect(isRecordingName(bad)).toBe(false);
});

it('serves 200, 206 with Content-Range, 416, and as an attachment with ?download=1', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tali-download-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'cam1'));
  const body = Buffer.from(Array.from({ length: 1000 }, (_, i) => i & 0xff));
  await writeFile(join(dir, 'cam1', 'cam1-1.webm'), body);
  await writeFile(join(dir, 'cam1', 'cam1-2.webm.part'), body);
  const server = createServer((req, res) => {
    const name = (req.url ?? '').split('?')[0]!.slice(1);
    void serveRecording(req, res, dir, 'cam1', name).then((found) => found || res.writeHead(404).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

  const whole = await fetch(`${url}/cam1-1.webm`);
  expect(whole.status).toBe(200);
  expect(whole.headers.get('accept-ranges')).toBe('bytes');
  expect(whole.headers.get('content-type')).toBe('video/webm');
  expect(Buffer.from(await whole.arrayBuffer())).toEqual(body);
  const part = await fetch(`${url}/cam1-1.webm`, { headers: { range: 'bytes=100-199' } });
  expect(part.status).toBe(206);
  expect(part.headers.get('content-range')).toBe('bytes 100-199/1000');
  expect(Buffer.from(await part.arrayBuffer())).toEqual(body.subarray(100, 200));
  const beyond = await fetch(`${url}/cam1-1.webm`, { headers: { range: 'bytes=5000-' } });
  expect(beyond.status).toBe(416);
  expect(beyond.headers.get('content-range')).toBe('bytes */1000');
  const download = await fetch(`${url}/cam1-1.webm?download=1`);
  expect(download.headers.get('content-disposition')).toBe('attachment; filename="cam1-1.webm"');
  expect((await fetch(`${url}/cam1-2.webm.part`)).status).toBe(404);
  expect((await fetch(`${url}/missing.webm`)).status).toBe(404);
});
