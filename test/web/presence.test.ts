/**
 * The presence file as another process reads it (`tali device list`): a bridge that stopped writing no longer
 * vouches for "online"; last seen survives; a restarted node starts with everyone offline and the old times.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { CredentialStore } from '../../src/security/credentials.ts';
import { PresenceBook, readPresence } from '../../src/fleet/presence.ts';
import { tali } from '../helpers/cli.ts';

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-presence-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

it('a stale file: online unknown, last seen kept; a fresh one from any node says online', async () => {
  const dir = await dataDir();
  await new CredentialStore(dir).add('cam1', 'device');
  await new CredentialStore(dir).add('cam2', 'device');
  const old = new Date(Date.now() - 3_600_000).toISOString();
  await writeFile(join(dir, 'presence-a.json'), JSON.stringify({ version: 1, bridgeId: 'a', pid: 1, updatedAt: old, devices: { cam1: { online: true, lastSeen: old } } }));
  expect(await readPresence(dir)).toEqual({ running: false, devices: new Map([['cam1', { online: false, lastSeen: Date.parse(old) }]]) });
  const stale = await tali('device', 'list', '--data-dir', dir);
  expect(stale.out).toMatch(new RegExp(`^cam1\\s+\\?\\s+${old.replace(/[.]/g, '\\.')}\\s`, 'm'));
  expect(stale.out).toMatch(/^cam2\s+\?\s+never\s/m);
  expect(stale.out).toContain('no bridge is running');

  const book = new PresenceBook({ dataDir: dir, bridgeId: 'b' });
  onTestFinished(() => book.close());
  await book.open();
  book.connected('cam2');
  await book.flush();
  const fresh = await readPresence(dir);
  expect(fresh.running).toBe(true);
  expect(fresh.devices.get('cam2')?.online).toBe(true);
  expect(fresh.devices.get('cam1')?.online).toBe(false);
  await book.close();
  expect((await readPresence(dir)).devices.get('cam2')?.online).toBe(false);

  // Restarted: the old run's times come back, nobody online.
  const again = new PresenceBook({ dataDir: dir, bridgeId: 'b' });
  onTestFinished(() => again.close());
  await again.open();
  expect(again.get('cam2')).toMatchObject({ online: false });
});
