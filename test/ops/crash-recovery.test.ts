/**
 * Recordings left by a crash (issue 17, item 2), with real processes: `tali start` recording a werift camera is
 * killed with SIGKILL mid-file, and started again on the same data directory. The part file it left is finalised
 * (cues, duration), renamed, listed by the recordings API with its start time, duration and size, and downloaded
 * through it (with a Range request, as a player seeks) into a file that ffprobe and ffmpeg decode. What cannot be
 * recovered still counts for retention.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CredentialStore } from '../../src/security/credentials.ts';
import { startTali } from '../helpers/tali-process.ts';
import { until } from '../helpers/wait.ts';
import { startStreamingCamera } from './camera.ts';
import { decodeErrors, probe, SKIP_WITHOUT_FFPROBE } from './ffprobe.ts';
import { untilReceived } from './prometheus.ts';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-crash-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe.skipIf(SKIP_WITHOUT_FFPROBE)('recordings left by a SIGKILL', () => {
  // Two bridge processes, a camera and ffprobe: more than the default 30 s on a loaded 2-core machine.
  it('are recovered on the next start: listed, downloadable and playable through the API; junk counts for retention', { timeout: 90_000 }, async () => {
    const dataDir = await tempDir();
    const args = ['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir, '--record', '*', '--log-level', 'info'];
    const before = Date.now();
    const first = startTali(args);
    const { mqttPort, httpPort: firstHttpPort } = await first.ready();
    const store = new CredentialStore(dataDir);
    const secret = await store.add('cam1', 'device');
    const camera = await startStreamingCamera({ url: `mqtt://127.0.0.1:${mqttPort}`, id: 'cam1', secret, codec: 'VP8', audio: 'PCMU' });
    await first.log((r) => r.msg === 'recording file started', 'recording to start');
    const dir = join(dataDir, 'recordings', 'cam1');
    // Until the file holds a few clusters (one per keyframe, each written whole when the next begins).
    await until(() => camera.video.keyframesSent >= 4, 20_000, '4 keyframes sent');
    const [part] = await readdir(dir);
    // Named for the bridge writing it: nodes sharing a data directory recover only their own.
    expect(part).toMatch(/^cam1-\d{8}T\d{9}Z\.mkv(\.bridge-[^/]+)?\.part$/);
    await until(() => camera.video.framesSent > 120, 20_000, '4 s streamed');
    // Sent is not received: killed while its media worker is behind on its socket (a loaded machine), the bridge
    // leaves a file that ends where its reading did.
    await untilReceived(firstHttpPort, camera.video.packetsSent);

    first.child.kill('SIGKILL');
    expect(await first.exited).toMatchObject({ signal: 'SIGKILL' });
    await camera.stop();
    expect(await readdir(dir)).toEqual([part]); // never finalised: before this fix, never listed either
    const owner = /\.mkv(\.bridge-[^/]+)?\.part$/.exec(part!)![1] ?? '';
    // Junk that only looks like one of this bridge's part files (an interrupted copy, a disk error): 3 MB.
    const junk = `cam1-20200101T000000000Z.mkv${owner}.part`;
    await writeFile(join(dir, junk), randomBytes(3_000_000));
    const anHourAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(dir, junk), anHourAgo, anHourAgo);

    const second = startTali([...args, '--record-max-megabytes', '2']);
    const { httpPort } = await second.ready();
    const admin = await store.add('ops', 'admin');
    const auth = { authorization: `Basic ${Buffer.from(`ops:${admin}`).toString('base64')}` };
    const api = `http://127.0.0.1:${httpPort}/api/recordings/cam1`;
    const listed = await fetch(api, { headers: auth });
    expect(listed.status).toBe(200);
    const { files } = (await listed.json()) as { files: { name: string; bytes: number; startedAt: string; durationMs: number }[] };
    const name = part!.slice(0, part!.indexOf('.mkv') + 4);
    expect(files).toEqual([{ deviceId: 'cam1', name, bytes: expect.any(Number), startedAt: expect.any(String), durationMs: expect.any(Number), modified: expect.any(String) }]);
    const file = files[0]!;
    expect(Date.parse(file.startedAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(file.startedAt)).toBeLessThan(Date.now());
    expect(file.durationMs).toBeGreaterThan(1500);
    expect(file.bytes).toBe((await stat(join(dir, name))).size);
    const recovered = second.logs.find((l) => l.event === 'recording_recovered');
    expect(recovered).toMatchObject({ path: join(dir, name), durationMs: file.durationMs });

    // Downloaded in two ranges, the way a player seeking in it would.
    const url = `${api}/files/${encodeURIComponent(name)}`;
    const head = await fetch(url, { headers: { ...auth, range: 'bytes=0-999' } });
    expect(head.status).toBe(206);
    expect(head.headers.get('content-range')).toBe(`bytes 0-999/${file.bytes}`);
    const tail = await fetch(url, { headers: { ...auth, range: 'bytes=1000-' } });
    expect(tail.status).toBe(206);
    const downloaded = join(await tempDir(), name);
    await writeFile(downloaded, Buffer.concat([Buffer.from(await head.arrayBuffer()), Buffer.from(await tail.arrayBuffer())]));
    expect((await readFile(downloaded)).equals(await readFile(join(dir, name)))).toBe(true);
    const info = await probe(downloaded);
    expect(info.streams.map((s) => s.codec)).toEqual(['vp8', 'pcm_s16le']);
    expect(info.startsOnKeyframe).toBe(true);
    expect(info.streams[0]!.frames).toBeGreaterThan(30);
    expect(Math.abs(info.durationS * 1000 - file.durationMs)).toBeLessThan(100); // the Duration the recovery wrote
    expect(await decodeErrors(downloaded)).toBe('');

    // The junk could not be recovered; retention counted it (3 MB over a 2 MB limit) and deleted it, oldest first.
    await second.log((r) => r.msg === 'recording deleted by retention', 'retention to delete the junk');
    expect(await readdir(dir)).toEqual([name]);
  });
});
