/**
 * The CLI of the scale-out modes: which command takes which option, and `tali mosquitto` output.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { expect, it, onTestFinished } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { runMosquitto } from '../../src/cli/mosquitto.ts';
import { CredentialStore } from '../../src/security/credentials.ts';

function io(stdin = '') {
  const out = { stdout: '', stderr: '' };
  const input = new PassThrough();
  input.end(stdin);
  return {
    out,
    io: {
      stdout: { write: (t: string) => ((out.stdout += t), true) } as unknown as NodeJS.WritableStream,
      stderr: { write: (t: string) => ((out.stderr += t), true) } as unknown as NodeJS.WritableStream,
      stdin: input,
    },
  };
}

it('tali answer needs --broker; tali start refuses it and --username; answer refuses --cluster', async () => {
  const a = io();
  expect(await main(['answer', '--http-port', '0'], a.io)).toBe(1);
  expect(a.out.stderr).toContain('tali answer needs --broker');
  const b = io();
  expect(await main(['start', '--broker', 'mqtt://127.0.0.1:1', '--http-port', '0'], b.io)).toBe(1);
  expect(b.out.stderr).toContain('run tali answer --broker');
  const c = io();
  expect(await main(['start', '--username', 'x'], c.io)).toBe(2);
  expect(c.out.stderr).toContain('--username and --password are for tali answer');
  const d = io();
  expect(await main(['answer', '--broker', 'mqtt://127.0.0.1:1', '--cluster', 'redis://127.0.0.1:1'], d.io)).toBe(1);
  expect(d.out.stderr).toContain('cluster: only for tali start');
  const e = io();
  expect(await main(['start', '--cluster', 'http://nope'], e.io)).toBe(1);
  expect(e.out.stderr).toContain('cluster: must be a redis:// or rediss:// URL');
});

it('tali mosquitto acl: a block for the bridge user and one per identity, with its own topics only', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tali-acl-'));
  onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
  const store = new CredentialStore(dataDir);
  await store.add('cam1', 'device');
  await store.add('alice', 'viewer');
  const run = io();
  expect(await runMosquitto(['acl', '--data-dir', dataDir, '--root', 'acme/cams', '--bridge-user', 'br'], run.io)).toBe(0);
  const text = run.out.stdout;
  expect(text).not.toMatch(/^pattern /m);
  const block = (user: string) => text.split('\n\n').find((b) => b.includes(`\nuser ${user}\n`)) ?? '';
  expect(block('br')).toContain('topic write #');
  expect(block('cam1').split('\n').filter((l) => l.startsWith('topic'))).toEqual([
    'topic write acme/cams/v1/device/cam1/up',
    'topic write acme/cams/v1/device/cam1/status',
    'topic read acme/cams/v1/device/cam1/down',
    'topic read acme/cams/v1/bridge/+/status',
  ]);
  expect(block('alice')).toContain('topic read acme/cams/v1/device/+/status');
  expect(block('alice')).toContain('topic write acme/cams/v1/viewer/alice/+/up');
});

it('tali mosquitto passwd reads the secret from standard input', async () => {
  const run = io('s3cret\n');
  expect(await runMosquitto(['passwd', 'cam1'], run.io)).toBe(0);
  expect(run.out.stdout).toMatch(/^cam1:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==\n$/);
  const empty = io('');
  expect(await runMosquitto(['passwd', 'cam1'], empty.io)).toBe(1);
  expect(empty.out.stderr).toContain('no secret on standard input');
});
