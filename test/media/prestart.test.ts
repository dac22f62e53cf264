/**
 * Media worker threads started with the bridge (option mediaWorkersPrestart, on by default, off for test bridges):
 * the bridge is ready only once every thread has loaded and paid werift's first use, so its first cameras find a
 * thread that needs no boot; `tali start` gives its threads its compile cache.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';
import { WorkerMedia } from '../../src/media/worker-media.ts';
import { createBridge } from '../helpers/bridge.ts';
import { mediaThreads } from '../helpers/media-threads.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { streamCamera } from '../helpers/streaming-camera.ts';
import { startTali } from '../helpers/tali-process.ts';

/** Preload that reports each thread importing @peculiar/x509. */
const TRACE_X509 = fileURLToPath(new URL('../helpers/trace-x509.ts', import.meta.url));

it('a prestarting bridge is ready with every media thread loaded and warm; its first cameras start no thread', async () => {
  const before = mediaThreads().length;
  const tb = await createBridge({ mediaWorkers: 2, mediaWorkersPrestart: true });
  onTestFinished(() => tb.close());
  const workers = tb.bridge.services.media as WorkerMedia;
  expect(workers).toBeInstanceOf(WorkerMedia);

  // Before any camera: both threads run and have answered their warm-up (a lazy bridge has none here).
  expect(workers.threads).toBe(2);
  expect(mediaThreads().length - before).toBe(2);
  expect(workers.workers.map((w) => w.warm)).toEqual([true, true]);

  // Two cameras, one per thread: both answered by threads that were warm before their offers.
  const [cam1, cam2] = await Promise.all([connectRawDevice(tb, 'mqtt', 'cam1'), connectRawDevice(tb, 'mqtt', 'cam2')]);
  const streams = [await streamCamera(tb, cam1, 'sess-cam1'), await streamCamera(tb, cam2, 'sess-cam2')];
  // One per thread: a thread's boot does not count as load.
  expect(new Set([workers.workerOf('cam1'), workers.workerOf('cam2')]), JSON.stringify(workers.workers)).toEqual(new Set([0, 1]));
  // Both threads' peers use the one certificate this thread made (each making its own loads werift's generator).
  const [one, two] = streams.map((s) => /^a=fingerprint:(.+)$/m.exec(s.pc.remoteDescription?.sdp ?? '')?.[1]);
  expect(one).toMatch(/^sha-256 [0-9A-F:]+$/);
  expect(two).toBe(one);
  expect(workers.threads).toBe(2);
  expect(mediaThreads().length - before).toBe(2);

  await tb.bridge.close();
  expect(mediaThreads().length).toBe(before);
});

it('a test bridge (prestart off) starts no thread before its first camera', async () => {
  const tb = await createBridge({ mediaWorkers: 2 });
  onTestFinished(() => tb.close());
  expect((tb.bridge.services.media as WorkerMedia).threads).toBe(0);
});

/** Threads of process `pid` named tali-media-N. */
function mediaThreadsOf(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((task) => {
    try {
      const name = readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim();
      return name.startsWith('tali-media') ? [name] : [];
    } catch {
      return [];
    }
  });
}

it("tali start: its media threads run before it says ready, load no certificate generator, and use and write the CLI's compile cache", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tali-prestart-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  // The cache bin/tali.js enables ($XDG_CACHE_HOME/tali/compile), fresh: nothing but this process writes it.
  const { NODE_COMPILE_CACHE: _, NODE_DISABLE_COMPILE_CACHE: __, ...env } = process.env;
  const tali = startTali(['--host', '127.0.0.1', '--mqtt-port', '0', '--http-port', '0', '--data-dir', join(dir, 'data'), '--media-workers', '2'], {
    ...env,
    XDG_CACHE_HOME: join(dir, 'cache'),
    NODE_OPTIONS: `${env.NODE_OPTIONS ?? ''} --import=${TRACE_X509}`,
  });
  await tali.ready(30_000);
  expect(mediaThreadsOf(tali.child.pid!).sort()).toEqual(['tali-media-0', 'tali-media-1']);
  // werift loads its certificate generator (~75 ms of CPU) only to make a certificate ([werift-x509-lazy]), and the
  // threads' warm-up peers use the one the main thread (thread 0) made: no media thread loaded it.
  expect(tali.stderr().match(/x509 loaded in thread \d+/g)).toEqual(['x509 loaded in thread 0']);
  // The main thread writes its cache 15 s after start or at exit; what is there now the media threads wrote once
  // warm (they compiled with the cache on: Node keeps no cache for a thread without it).
  const [version] = await readdir(join(dir, 'cache', 'tali', 'compile'));
  expect(version).toBeDefined();
  expect((await readdir(join(dir, 'cache', 'tali', 'compile', version!))).length).toBeGreaterThan(100);
});
