/**
 * The credential store in one process, read (every login refreshes it) while it is written (the admin API or a test
 * adding devices): a read that began before a write and ended after the write had changed the entries once put the
 * old entries back, under the new file's version, and a device added a moment earlier was refused until the file
 * changed again. Here the first file read is made to return at exactly that moment: when the write begins (or, if
 * the store never lets a write begin while a read is pending, after a second).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';

const trap = { armed: false, held: 0, release: () => {} };

vi.mock('node:fs/promises', async (original) => {
  const fs = await original<typeof import('node:fs/promises')>();
  return {
    ...fs,
    readFile: async (...args: Parameters<typeof fs.readFile>) => {
      const content = await fs.readFile(...args);
      if (trap.armed && String(args[0]).endsWith('identities.json')) {
        trap.armed = false; // only the first read is held back
        trap.held++;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 1000);
          trap.release = () => (clearTimeout(timer), resolve());
        });
      }
      return content;
    },
    writeFile: async (...args: Parameters<typeof fs.writeFile>) => {
      if (String(args[0]).includes('identities.json.')) trap.release();
      return fs.writeFile(...args);
    },
  };
});

const { CredentialStore } = await import('../../src/security/credentials.ts');

describe('credential store in one process', () => {
  it('a refresh that read the file before a write cannot hide the entry the write added', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tali-creds-race-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const writer = new CredentialStore(dir);
    await writer.add('seed', 'device');
    const store = new CredentialStore(dir);
    await store.refresh();
    await writer.add('other', 'device'); // the file changes behind `store`'s back: its next refresh reads it

    trap.armed = true;
    const reading = store.refresh(); // reads the file now; the read returns late
    const secret = await store.add('cam1', 'device');
    await reading;
    expect(trap.held).toBe(1);
    expect(store.lookup('cam1')).toBeDefined();
    expect(await store.verify('cam1', Buffer.from(secret))).toMatchObject({ id: 'cam1' });
  });
});
