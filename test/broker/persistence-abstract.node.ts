/**
 * aedes-persistence's shared test suite (abstract.js, on node:test) against the embedded broker's persistence with
 * its state file: the memory store with the retained index (retained-index.ts) written through to a StateDb
 * (persisted-state.ts). Run by persistence-abstract.test.ts in a child process (`node --test`).
 */
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { indexRetained } from '../../src/broker/retained-index.ts';
import { persistTo } from '../../src/broker/persisted-state.ts';
import { StateDb } from '../../src/broker/state-db.ts';

const require = createRequire(import.meta.url);
const AsyncMemory = require('aedes-persistence/asyncPersistence.js');
const abstract = require('aedes-persistence/abstract.js');

const dir = mkdtempSync(join(tmpdir(), 'tali-persistence-abstract-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let n = 0;

abstract({
  test,
  testAsync: true,
  persistence: () => {
    const memory = new AsyncMemory();
    const db = StateDb.open({ file: join(dir, `state-${n++}.db`), onError: (err) => { throw err; } });
    indexRetained(memory);
    // Filling from an empty file is synchronous in effect: nothing to read, the methods are wrapped at once.
    void persistTo(memory, db, 'abstract');
    const destroy = memory.destroy.bind(memory);
    memory.destroy = async () => {
      db.close();
      return destroy();
    };
    return memory;
  },
});
