/**
 * `tali start` as a newcomer meets it: a port in use or a data directory that is a file is one line with a TALI_ERR_*
 * code and a hint (no stack), and leaves no identity behind; the ready line says where the dashboard and the admin
 * secret are; logs are JSON lines in a pipe and readable (pino-pretty) on a terminal.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { tali } from '../helpers/cli.ts';
import { withTimeout } from '../helpers/wait.ts';

const ROOT = join(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');

async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-start-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function busyPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as { port: number }).port;
}

it.each(['--http-port', '--mqtt-port'])('a port in use (%s): one line with TALI_ERR_LISTEN and a hint, no identity created', async (flag) => {
  const dataDir = await freshDir();
  const port = await busyPort();
  const ports = { '--http-port': '0', '--mqtt-port': '0', [flag]: String(port) };
  const { code, err } = await tali('start', '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'silent', ...Object.entries(ports).flat());
  expect(code).toBe(1);
  const lines = err.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^tali start: TALI_ERR_LISTEN: port ${port} \\(.+\\) on 127\\.0\\.0\\.1: in use \\(EADDRINUSE\\)\\. Hint: .*npm start -- ${flag} ${port + 1}`));
  expect(await readdir(dataDir)).toEqual([]); // no identities.json, no admin.secret
});

it('a data directory that is a file: one line with TALI_ERR_DATA_DIR', async () => {
  const dir = await freshDir();
  const file = join(dir, 'data');
  await writeFile(file, 'not a directory\n');
  for (const dataDir of [file, join(file, 'sub')]) {
    const { code, err } = await tali('start', '--host', '127.0.0.1', '--http-port', '0', '--mqtt-port', '0', '--data-dir', dataDir, '--log-level', 'silent');
    expect(code).toBe(1);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/^tali start: TALI_ERR_DATA_DIR: data directory .+ \((EEXIST|ENOTDIR)\)\. Hint: /);
  }
});

/** `tali start` as a process; resolves with its output up to the first line that matches, then stops it. */
async function startProcess(command: string, args: string[], ready: RegExp): Promise<string> {
  const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '' } });
  onTestFinished(() => void child.kill('SIGKILL'));
  let out = '';
  const seen = new Promise<void>((resolve) => child.stdout.on('data', (c: Buffer) => ((out += c.toString()), ready.test(out) && resolve())));
  await withTimeout(seen, 30_000, `${ready} in the output of tali start`);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await withTimeout(exited, 10_000, 'tali start to exit');
  return out;
}

it('in a pipe: JSON lines; the ready line names the dashboard URL and the admin secret file', async () => {
  const dataDir = await freshDir();
  const out = await startProcess(NODE, ['bin/tali.js', 'start', '--host', '127.0.0.1', '--http-port', '0', '--mqtt-port', '0', '--data-dir', dataDir], /"tali ready"/);
  const records = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const ready = records.find((r) => r.msg === 'tali ready')!;
  expect(ready.dashboard).toBe(`http://127.0.0.1:${ready.httpPort as number}/`);
  expect(ready.adminSecretFile).toBe(join(dataDir, 'admin.secret'));
  expect(existsSync(join(dataDir, 'admin.secret'))).toBe(true);
});

const HAVE_SCRIPT = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;
it.skipIf(!HAVE_SCRIPT)('on a terminal: readable lines (pino-pretty), not JSON', async () => {
  const dataDir = await freshDir();
  // `script` runs the command on a pseudo-terminal, as a person's shell would.
  const cmd = `${NODE} bin/tali.js start --host 127.0.0.1 --http-port 0 --mqtt-port 0 --data-dir ${dataDir}`;
  const out = await startProcess('script', ['-qfec', cmd, '/dev/null'], /tali ready[\s\S]*adminSecretFile/);
  const text = out.replace(/\u001b\[[0-9;]*m/g, '');
  expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: tali ready$/m);
  expect(text).toMatch(/^\s+dashboard: "http:\/\/127\.0\.0\.1:\d+\/"$/m);
  expect(text).not.toMatch(/^\{"level"/m);
});
