/**
 * Option mediaWorkerNice: each media worker thread lowers its own scheduling priority below the main thread's by that
 * many nice values (src/media/thread-priority.ts), as the kernel reports it per thread; the main thread keeps its own.
 */
import { expect, it, onTestFinished } from 'vitest';
import { createBridge } from '../helpers/bridge.ts';
import { mediaThreadIds, threadNice } from '../helpers/media-threads.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { streamCamera } from '../helpers/streaming-camera.ts';

const mainNice = () => threadNice(process.pid);

/** A bridge with two media workers and two streaming cameras (one per worker): the nice value of each worker thread. */
async function workerNices(mediaWorkerNice: number | undefined): Promise<number[]> {
  const before = new Set(mediaThreadIds().map((t) => t.tid));
  const tb = await createBridge({ mediaWorkers: 2, ...(mediaWorkerNice === undefined ? {} : { mediaWorkerNice }) });
  onTestFinished(() => tb.close());
  const [cam1, cam2] = await Promise.all([connectRawDevice(tb, 'mqtt', 'cam1'), connectRawDevice(tb, 'mqtt', 'cam2')]);
  await streamCamera(tb, cam1, 'sess-cam1');
  await streamCamera(tb, cam2, 'sess-cam2');
  const threads = mediaThreadIds().filter((t) => !before.has(t.tid));
  expect(threads.length).toBe(2);
  return threads.map((t) => threadNice(t.tid));
}

it('media worker threads run the asked nice steps below the main thread, which keeps its priority', async () => {
  const main = mainNice();
  expect(await workerNices(7)).toEqual([Math.min(19, main + 7), Math.min(19, main + 7)]);
  expect(mainNice()).toBe(main);
});

it('by default (0) they keep the main thread’s priority; never past 19', async () => {
  const main = mainNice();
  expect(await workerNices(undefined)).toEqual([main, main]);
  expect(await workerNices(19)).toEqual([19, 19]);
});
