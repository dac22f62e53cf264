/**
 * Closing a bridge with media workers, in every state a worker can be in: setting up a camera's session (the thread
 * still starting), carrying a camera and its viewer, answering nothing (busy or stuck), or gone on its own. close()
 * finishes within the shutdown budget, every peer gets its bye, and no thread, port or timer is left behind.
 *
 * To see (and silence) a worker from here, this file wraps Worker.prototype.postMessage: it records which thread got
 * which command, and a "deaf" thread gets none from then on, which is how a busy or stuck worker looks from the main
 * thread. Files run in their own processes (vitest forks), so nothing else sees the wrapper.
 */
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, expect, it, onTestFinished } from 'vitest';
import type { WorkerMedia } from '../../src/media/worker-media.ts';
import type { ToWorker } from '../../src/media/wire.ts';
import { createBridge, type TestBridge } from '../helpers/bridge.ts';
import { mediaThreads } from '../helpers/media-threads.ts';
import { connectRawDevice } from '../helpers/raw-device.ts';
import { connectRawViewer, type RawViewer } from '../helpers/raw-viewer.ts';
import { streamCamera } from '../helpers/streaming-camera.ts';
import { until, withTimeout } from '../helpers/wait.ts';

/** The thread each device's objects were created on. */
const threadOf = new Map<string, Worker>();
const deaf = new Set<Worker>();
const post = Worker.prototype.postMessage;

beforeAll(() => {
  Worker.prototype.postMessage = function (this: Worker, message: ToWorker, transfer?: readonly Transferable[]) {
    if (deaf.has(this)) return;
    if (message.t === 'create' && message.kind === 'session') threadOf.set(message.options.deviceId, this);
    post.call(this, message, transfer as never);
  } as Worker['postMessage'];
});
afterAll(() => {
  Worker.prototype.postMessage = post;
});

const BUDGET_MS = 6000;

/** A bridge with two media workers; `close()` closes it (once) and says how long that took. */
async function workerBridge(): Promise<TestBridge & { workers: WorkerMedia; close(): Promise<number> }> {
  const tb = await createBridge({ mediaWorkers: 2, shutdownTimeoutMs: BUDGET_MS });
  let took: Promise<number> | undefined;
  const close = () =>
    (took ??= (async () => {
      const start = performance.now();
      await tb.close();
      return performance.now() - start;
    })());
  onTestFinished(() => void close());
  return { ...tb, workers: tb.bridge.services.media as WorkerMedia, close };
}

/** A viewer of `deviceId` that has video. */
async function watching(tb: TestBridge, deviceId: string): Promise<RawViewer> {
  const alice = await connectRawViewer(tb, 'mqtt', 'alice');
  const peer = await alice.createPeer();
  await alice.send('watch', 'view-alice', 1, { deviceId, sdp: peer.sdp });
  const answer = await alice.down.next((m) => m.type === 'answer', 10_000, 'viewer answer');
  await peer.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp as string });
  await withTimeout(peer.packets('video', 10), 15_000, '10 video packets at the viewer');
  return alice;
}

const bye = (sessionId: string) => (m: Record<string, unknown>) => m.type === 'bye' && m.sessionId === sessionId;

/** What keeps this process's event loop alive, by kind (process.getActiveResourcesInfo()). */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) counts[kind] = (counts[kind] ?? 0) + 1;
  return counts;
}

it("close while a camera's session is being set up (its thread still starting) ends it with bye shutdown and leaves no thread", async () => {
  const before = mediaThreads().length;
  const tb = await workerBridge();
  const cam = await connectRawDevice(tb, 'mqtt', 'cam1');
  expect(tb.workers.threads).toBe(0); // no media yet: no thread
  const { RTCPeerConnection } = await import('werift');
  const pc = new RTCPeerConnection({});
  onTestFinished(() => pc.close());
  pc.addTransceiver('video', { direction: 'sendonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await cam.send(cam.message('offer', 'sess-setup', 1, { sdp: pc.localDescription?.sdp }));
  await until(() => tb.bridge.answerer.sessions.has('cam1'), 5000, 'the session opened');
  expect(tb.workers.threads).toBe(1);

  const took = await tb.close();
  expect(took).toBeLessThan(BUDGET_MS);
  expect(tb.workers.threads).toBe(0);
  expect(mediaThreads().length).toBe(before);
  const end = await cam.down.next(bye('sess-setup'), 2000, 'bye');
  expect(end.reason).toBe('shutdown');
});

it('close with a camera streaming to a viewer: both get bye shutdown; no thread, port or timer is left', async () => {
  const threadsBefore = mediaThreads().length;
  const tb = await workerBridge();
  const cam = await connectRawDevice(tb, 'mqtt', 'cam1');
  const camera = await streamCamera(tb, cam, 'sess-cam');
  const alice = await watching(tb, 'cam1');
  // Measured once the test's own peers and clients exist: what is left after close must be only theirs.
  const held = resources();

  const took = await tb.close();
  expect(took).toBeLessThan(BUDGET_MS);
  expect((await cam.down.next(bye('sess-cam'), 2000, 'camera bye')).reason).toBe('shutdown');
  expect((await alice.down.next(bye('view-alice'), 2000, 'viewer bye')).reason).toBe('shutdown');
  expect(mediaThreads().length).toBe(threadsBefore);
  // The bridge's listeners, its broker's sockets and the workers' ports are gone; the test's peers remain.
  await camera.stop();
  const left = resources();
  expect(left.MessagePort ?? 0).toBe(0);
  expect(left.TCPServerWrap ?? 0).toBe(0);
  expect(left.Timeout ?? 0).toBeLessThanOrEqual(held.Timeout ?? 0);
});

it('close while a worker answers nothing (busy or stuck): within the budget, its peers get bye shutdown, the thread is terminated', async () => {
  const before = mediaThreads().length;
  const tb = await workerBridge();
  const cam = await connectRawDevice(tb, 'mqtt', 'cam1');
  await streamCamera(tb, cam, 'sess-cam');
  const alice = await watching(tb, 'cam1');
  const thread = threadOf.get('cam1')!;
  const exited = new Promise<number>((resolve) => thread.once('exit', resolve));
  deaf.add(thread);

  const took = await tb.close();
  // Its share of the budget (0.6), then the rest of the shutdown: not the budget plus a wait for the worker.
  expect(took).toBeLessThan(BUDGET_MS);
  expect(took).toBeGreaterThan(BUDGET_MS * 0.5);
  // No thread outlives close(): the stuck one was terminated before close() resolved.
  await withTimeout(exited, 1, 'the stuck thread had exited');
  expect(mediaThreads().length).toBe(before);
  // The worker sent nothing; the main thread ended its objects for it, as a shutdown.
  expect((await cam.down.next(bye('sess-cam'), 2000, 'camera bye')).reason).toBe('shutdown');
  expect((await alice.down.next(bye('view-alice'), 2000, 'viewer bye')).reason).toBe('shutdown');
});

it('a worker that exits on its own: its camera and viewer get bye error, the camera streams again on a new thread, close leaves none', async () => {
  const before = mediaThreads().length;
  const tb = await workerBridge();
  const cam = await connectRawDevice(tb, 'mqtt', 'cam1');
  await streamCamera(tb, cam, 'sess-first');
  const alice = await watching(tb, 'cam1');
  const thread = threadOf.get('cam1')!;

  await thread.terminate(); // not through the bridge: as if the thread had died
  expect((await cam.down.next(bye('sess-first'), 5000, 'camera bye')).reason).toBe('error');
  expect((await alice.down.next(bye('view-alice'), 5000, 'viewer bye')).reason).toBe('error');
  await until(() => !tb.bridge.answerer.sessions.has('cam1') && tb.bridge.relay.viewers.size === 0, 5000, 'session and viewer gone');
  expect(tb.workers.workerOf('cam1')).toBeUndefined();

  // The camera offers again: a new thread takes it and it streams.
  const again = await streamCamera(tb, cam, 'sess-second');
  await until(() => again.session.state === 'streaming', 10_000, 'streaming again');
  expect(threadOf.get('cam1')).not.toBe(thread);

  const took = await tb.close();
  expect(took).toBeLessThan(BUDGET_MS);
  expect(tb.workers.threads).toBe(0);
  expect(mediaThreads().length).toBe(before);
});
