/**
 * The fan-out after the pass is done in chunks of bounded work, each in its own pass of the loop (src/media/fan-out.ts):
 * a command that becomes ready while a burst is fanned out (a media worker's port message) is read after one chunk,
 * not after the burst, and what it made leaves (beforeForward) before any more media work. Asserted by counting the
 * sends done before the command is read, not by time. MediaHost with real Session and ViewerSession objects; packets
 * are emitted from a port message (read in the poll phase, as a socket's are).
 */
import { MessageChannel } from 'node:worker_threads';
import { pino } from 'pino';
import type { RtpPacket } from 'werift';
import { expect, it, onTestFinished } from 'vitest';
import { CHUNK_SENDS, FanOut } from '../../src/media/fan-out.ts';
import { MediaHost } from '../../src/media/host.ts';
import type { ViewerSession } from '../../src/relay/viewer.ts';
import type { RemoteTrack } from '../../src/webrtc/peer.ts';

const logger = pino({ level: 'silent' });
const VIEWERS = 10;
const PACKETS = 100;

function channel(onMessage: () => void): MessageChannel {
  const ch = new MessageChannel();
  ch.port2.on('message', onMessage);
  onTestFinished(() => ch.port1.close());
  return ch;
}

it("a command read during a burst's fan-out waits for one chunk, and its reply leaves before the next", async () => {
  let sends = 0;
  let commandAt: number | undefined;
  let replyAt: number | undefined;
  let replying = false;
  const host = new MediaHost({ received: () => {}, sent: () => {}, caughtUp: () => {} }, { beforeForward: () => replying && ((replying = false), (replyAt = sends)) });
  onTestFinished(() => host.close());
  const session = host.openSession({ deviceId: 'cam1', sessionId: 's1', peer: { iceServers: [] }, connectTimeoutMs: 60_000, mediaTimeoutMs: 60_000, logger, send: () => {} });

  let read!: () => void;
  const commandRead = new Promise<void>((resolve) => (read = resolve));
  const command = channel(() => {
    read();
    commandAt = sends;
    replying = true; // what a worker's command makes goes out in its next batch (worker-main's flush = beforeForward)
  });
  const got = new Map<ViewerSession, number[]>();
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  for (let i = 0; i < VIEWERS; i++) {
    const viewer = host.createViewer({
      owner: { user: `u${i}`, key: `k${i}`, send: () => {} },
      watch: { sessionId: `v${i}`, deviceId: 'cam1' } as never,
      peer: () => ({ iceServers: [] }),
      connectTimeoutMs: 60_000,
      waitTimeoutMs: 60_000,
      logger,
    });
    got.set(viewer, []);
    viewer.forward = (_track, packet) => {
      // The command arrives while the burst is being fanned out (posted from another thread in a worker).
      if (sends++ === 0) command.port1.postMessage('offer');
      got.get(viewer)!.push(packet.header.sequenceNumber);
      if (sends === VIEWERS * PACKETS) done();
    };
  }
  const track = { kind: 'video' } as RemoteTrack;
  // One pass's reads: a keyframe burst of PACKETS packets, read in the poll phase.
  const reads = channel(() => {
    for (let seq = 0; seq < PACKETS; seq++) session.emit('rtp', track, { header: { sequenceNumber: seq }, payload: Buffer.alloc(100) } as unknown as RtpPacket, performance.now());
  });
  reads.port1.postMessage('burst');
  await Promise.all([all, commandRead]);

  // At most one chunk (whole packets: its budget plus one packet's other viewers) before the command was read; the old
  // code fanned out all 1000 sends first.
  expect(commandAt).toBeDefined();
  expect(commandAt!).toBeLessThanOrEqual(CHUNK_SENDS + VIEWERS - 1);
  // What the command made left before any more media work.
  expect(replyAt).toBe(commandAt);
  // Nothing lost, nothing twice, each viewer in the order read.
  for (const seqs of got.values()) expect(seqs).toEqual([...Array(PACKETS).keys()]);
  expect(host.fanOut.queued).toBe(0);
  await session.close('normal');
  for (const viewer of got.keys()) await viewer.close('normal');
});

it('a queue past its bound catches up in one chunk, counted, and loses nothing', async () => {
  const sent: string[] = [];
  const chunkSizes: number[] = [];
  let inChunk = 0;
  const fanOut = new FanOut<string, number, null>({
    chunkSends: 4,
    maxQueuedSends: 20,
    before: () => {
      if (inChunk > 0) chunkSizes.push(inChunk);
      inChunk = 0;
    },
    send: (viewer, seq) => {
      inChunk++;
      sent.push(`${viewer}:${seq}`);
    },
  });
  const viewers = new Set(['a', 'b']);
  for (let seq = 0; seq < 30; seq++) fanOut.push(viewers, seq, null); // 60 sends queued, bound 20
  expect(fanOut.queued).toBe(30);
  while (fanOut.queued > 0) await new Promise((resolve) => setImmediate(resolve));
  chunkSizes.push(inChunk);
  // First chunk: its 4 sends, then on until 20 sends are left (40 done, 36 of them past the budget); then chunks of 4.
  expect(chunkSizes).toEqual([40, 4, 4, 4, 4, 4]);
  expect(fanOut.catchUpSends).toBe(36);
  expect(fanOut.chunks).toBe(6);
  expect(sent).toEqual([...Array(30).keys()].flatMap((seq) => [`a:${seq}`, `b:${seq}`]));
});
