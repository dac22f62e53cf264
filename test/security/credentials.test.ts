/**
 * The credential store's file is shared by processes (the bridge, `tali device add`, a `tali camera` that registers
 * itself): concurrent writers lose nothing, a lock left by a dead writer does not block forever, and secrets are
 * stored only as scrypt hashes.
 */
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CredentialStore } from '../../src/security/credentials.ts';

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-creds-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('credential store', () => {
  it('two writers at once (as two processes) keep every entry', async () => {
    const dir = await dataDir();
    const a = new CredentialStore(dir);
    const b = new CredentialStore(dir);
    const ids = Array.from({ length: 12 }, (_, i) => `cam${i}`);
    await Promise.all(ids.map((id, i) => (i % 2 ? a : b).add(id, 'device')));
    expect((await new CredentialStore(dir).list()).map((i) => i.id).sort()).toEqual([...ids].sort());
    await Promise.all([a.remove('cam0'), b.remove('cam1'), a.add('alice', 'viewer')]);
    expect((await new CredentialStore(dir).list()).map((i) => i.id)).not.toContain('cam0');
    expect((await new CredentialStore(dir).list()).map((i) => i.id)).toContain('alice');
  });

  it('a lock left by a writer that died is taken over once stale', async () => {
    const dir = await dataDir();
    const store = new CredentialStore(dir);
    const lock = `${store.file}.lock`;
    await writeFile(lock, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    await store.add('cam1', 'device');
    expect(await store.get('cam1')).toMatchObject({ role: 'device' });
  });

  it('keeps no secret in clear', async () => {
    const dir = await dataDir();
    const store = new CredentialStore(dir);
    const secret = await store.add('cam1', 'device');
    expect(await readFile(store.file, 'utf8')).not.toContain(secret);
    expect(await store.verify('cam1', Buffer.from(secret))).toMatchObject({ id: 'cam1' });
    expect(await store.verify('cam1', Buffer.from(`${secret}x`))).toBeUndefined();
  });
});
