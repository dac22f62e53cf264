/**
 * `tali device add <id> --profile libpeer`: the device is stored with its profile, the output gives the libpeer URL
 * and token forms, an ID libpeer would cut (more than 31 characters) is refused, re-keying keeps the profile, and
 * `tali device list` shows it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { resolveToken } from '../../devices/libpeer/signaling.ts';
import { CredentialStore } from '../../src/security/credentials.ts';
import { tali } from '../helpers/cli.ts';

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-cli-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

describe('tali device add --profile libpeer', () => {
  it('stores the profile and prints the URL and token a libpeer build takes', async () => {
    const dir = await dataDir();
    const added = await tali('device', 'add', 'cam-lp1', '--profile', 'libpeer', '--data-dir', dir);
    expect(added.code).toBe(0);
    const token = /token: (\S+)/.exec(added.out)?.[1] as string;
    const secret = /^ {2}(\S+)$/m.exec(added.out)?.[1];
    expect(added.out).toContain('url:   mqtts://BRIDGE-HOST:8883/public/cam-lp1');
    expect(resolveToken(token)).toEqual({ username: 'cam-lp1', password: secret });
    expect(await new CredentialStore(dir).get('cam-lp1')).toMatchObject({ role: 'device', profile: 'libpeer' });

    const rekeyed = await tali('device', 'add', 'cam-lp1', '--replace', '--quiet', '--data-dir', dir);
    expect(rekeyed.code).toBe(0);
    expect(await new CredentialStore(dir).get('cam-lp1')).toMatchObject({ profile: 'libpeer' });
    expect((await tali('device', 'add', 'cam-lp1', '--replace', '--profile', 'native', '--quiet', '--data-dir', dir)).code).toBe(0);
    expect((await new CredentialStore(dir).get('cam-lp1'))?.profile).toBeUndefined();

    await tali('device', 'add', 'cam-lp2', '--profile', 'libpeer', '--data-dir', dir);
    const list = await tali('device', 'list', '--json', '--data-dir', dir);
    expect(JSON.parse(list.out)).toEqual([expect.not.objectContaining({ profile: expect.anything() }), expect.objectContaining({ id: 'cam-lp2', profile: 'libpeer' })]);
  });

  it('refuses an ID over 31 characters, an unknown profile, and --profile for users', async () => {
    const dir = await dataDir();
    const long = await tali('device', 'add', 'c'.repeat(32), '--profile', 'libpeer', '--data-dir', dir);
    expect(long).toMatchObject({ code: 1, err: expect.stringContaining('TALI_ERR_INVALID_ID') });
    expect((await tali('device', 'add', 'c'.repeat(31), '--profile', 'libpeer', '--data-dir', dir)).code).toBe(0);
    expect(await tali('device', 'add', 'cam1', '--profile', 'kvs', '--data-dir', dir)).toMatchObject({ code: 2, err: expect.stringContaining('--profile must be libpeer or native') });
    expect(await tali('user', 'add', 'bob', '--role', 'viewer', '--profile', 'libpeer', '--data-dir', dir)).toMatchObject({ code: 2 });
  });
});
