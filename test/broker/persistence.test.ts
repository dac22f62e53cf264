/**
 * The embedded broker's state file (src/broker/state-db.ts, persisted-state.ts) at the persistence interface:
 * aedes-persistence's own shared suite passes on it, and what was written comes back in a fresh process's memory
 * store (a reopened file): retained messages, stored subscriptions (matched by topic again), queued packets in order
 * with the packet identifier of one already sent; packets restored are still found and cleared by Aedes' calls.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { persistTo, type WritablePersistence } from '../../src/broker/persisted-state.ts';
import { indexRetained } from '../../src/broker/retained-index.ts';
import { StateDb } from '../../src/broker/state-db.ts';

const require = createRequire(import.meta.url);
const AsyncMemory = require('aedes-persistence/asyncPersistence.js') as new () => Memory;

type Memory = WritablePersistence & Parameters<typeof indexRetained>[0] & {
  subscriptionsByClient(client: { id: string }): Promise<{ topic: string; qos: number }[]>;
  subscriptionsByTopic(topic: string): Promise<{ clientId: string; topic: string; qos: number }[]>;
  outgoingStream(client: { id: string }): AsyncIterable<{ topic: string; payload: Buffer; messageId?: number; brokerId: string; brokerCounter: number }>;
};

async function opened(file: string): Promise<{ memory: Memory; db: StateDb; restored: Awaited<ReturnType<typeof persistTo>> }> {
  const memory = new AsyncMemory();
  const db = StateDb.open({ file, onError: (err) => { throw err; } });
  onTestFinished(() => db.close());
  indexRetained(memory);
  const restored = await persistTo(memory, db, 'node-1');
  return { memory, db, restored };
}

async function all<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

const publish = (topic: string, text: string, counter: number) => ({ cmd: 'publish', topic, payload: Buffer.from(text), qos: 1, retain: false, dup: false, brokerId: 'node-1', brokerCounter: counter });

describe('state file', () => {
  it("passes aedes-persistence's shared suite (abstract.js), written through to the file", { timeout: 120_000 }, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--test', join(import.meta.dirname, 'persistence-abstract.node.ts')], { cwd: join(import.meta.dirname, '../..') });
    expect(stdout).toMatch(/^ℹ pass 50$/m);
    expect(stdout).toMatch(/^ℹ fail 0$/m);
  });

  it('gives back, after a reopen, what was kept: retained, subscriptions, queues in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tali-state-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'state.db');

    const first = await opened(file);
    const m = first.memory;
    await m.storeRetained({ topic: 'tali/v1/device/a/status', payload: Buffer.from('A'), qos: 1 });
    await m.storeRetained({ topic: 'tali/v1/device/b/status', payload: Buffer.from('B'), qos: 1 });
    await m.storeRetained({ topic: 'tali/v1/device/b/status', payload: Buffer.alloc(0), qos: 1 }); // cleared
    await m.addSubscriptions({ id: 'alice:q' }, [{ topic: 'tali/v1/device/+/status', qos: 1 }, { topic: 'x/y', qos: 1 }]);
    await m.removeSubscriptions({ id: 'alice:q' }, ['x/y']);
    await m.addSubscriptions({ id: 'bob:q' }, [{ topic: 'gone', qos: 1 }]);
    await m.cleanSubscriptions({ id: 'bob:q' });
    for (const [i, text] of ['one', 'two', 'three', 'four'].entries()) await m.outgoingEnqueueCombi([{ clientId: 'alice:q' }], publish('tali/v1/device/a/status', text, i + 1));
    await m.outgoingUpdate({ id: 'alice:q' }, { ...publish('tali/v1/device/a/status', 'one', 1), messageId: 7 }); // sent, not acknowledged
    await m.outgoingUpdate({ id: 'alice:q' }, { ...publish('tali/v1/device/a/status', 'two', 2), messageId: 8 });
    await m.outgoingClearMessageId({ id: 'alice:q' }, { messageId: 8 }); // acknowledged
    first.db.close();

    const second = await opened(file);
    expect(second.restored).toEqual({ retained: 1, subscriptions: 1, queued: new Map([['alice:q', { messages: 3, bytes: 12 }]]) });
    expect(second.db.previousAliveAt).toBeGreaterThan(0);
    const retained = await all(second.memory.createRetainedStream('tali/v1/device/+/status') as AsyncIterable<{ topic: string; payload: Buffer }>);
    expect(retained.map((p) => [p.topic, p.payload.toString()])).toEqual([['tali/v1/device/a/status', 'A']]);
    expect(await second.memory.subscriptionsByClient({ id: 'alice:q' })).toEqual([{ topic: 'tali/v1/device/+/status', qos: 1 }]);
    expect(await second.memory.subscriptionsByClient({ id: 'bob:q' })).toEqual([]);
    expect((await second.memory.subscriptionsByTopic('tali/v1/device/c/status')).map((s) => s.clientId)).toEqual(['alice:q']);
    const queue = await all(second.memory.outgoingStream({ id: 'alice:q' }));
    expect(queue.map((p) => [p.payload.toString(), p.messageId])).toEqual([['one', 7], ['three', undefined], ['four', undefined]]);
    // Renamed: a restarted Aedes counts from 0 again under its own ID.
    expect(new Set(queue.map((p) => p.brokerId))).toEqual(new Set(['node-1~restored']));

    // Aedes resends them (a packet identifier each, found by broker ID and counter), then clears one: kept too.
    const [, three, four] = queue;
    await second.memory.outgoingUpdate({ id: 'alice:q' }, { ...three!, messageId: 9 });
    await second.memory.outgoingUpdate({ id: 'alice:q' }, { ...four!, messageId: 10 });
    await second.memory.outgoingClearMessageId({ id: 'alice:q' }, { messageId: 9 });
    second.db.close();
    const third = await opened(file);
    expect((await all(third.memory.outgoingStream({ id: 'alice:q' }))).map((p) => [p.payload.toString(), p.messageId])).toEqual([['one', 7], ['four', 10]]);
  });
});
