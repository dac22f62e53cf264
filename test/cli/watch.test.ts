/**
 * `tali watch` against a broker that is not there: it keeps retrying, yet --duration and SIGINT/SIGTERM still end it
 * (exit 1, the JSON summary printed), where it used to wait for a connection forever.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { expect, it, onTestFinished } from 'vitest';
import { runWatch } from '../../src/cli/watch.ts';
import { withTimeout } from '../helpers/wait.ts';

/** A port nothing listens on (taken from the OS, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

it('--duration ends a watch that never connected: exit 1 with the summary', async () => {
  const url = `mqtt://127.0.0.1:${await closedPort()}`;
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) => new Writable({ write: (c: Buffer, _e, done) => (append(c.toString()), done()) });
  const began = performance.now();
  const code = await withTimeout(runWatch(['--url', url, '--device', 'cam1', '--password', 'x', '--duration', '1'], { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)) }), 10_000, 'tali watch to end');
  expect(code).toBe(1);
  expect(performance.now() - began).toBeLessThan(8000);
  expect(JSON.parse(stdout)).toMatchObject({ url, tracks: [] });
  expect(stderr).toContain('could not connect to the broker');
});

it.each(['SIGINT', 'SIGTERM'] as const)('%s ends a watch that never connected', async (signal) => {
  const url = `mqtt://127.0.0.1:${await closedPort()}`;
  const root = join(import.meta.dirname, '../..');
  const child = spawn(join(root, 'node_modules/.bin/node'), [join(root, 'bin/tali.js'), 'watch', '--url', url, '--device', 'cam1', '--duration', '600', '--log-level', 'info'], {
    env: { ...process.env, TALI_PASSWORD: 'x' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => void child.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const retrying = new Promise<void>((resolve) => child.stderr.on('data', (c: Buffer) => ((stderr += c.toString()), stderr.includes('broker unreachable') && resolve())));
  await withTimeout(retrying, 15_000, 'tali watch to report retrying');
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  expect(await withTimeout(exited, 10_000, `tali watch to exit on ${signal}`)).toBe(1);
  expect(JSON.parse(stdout)).toMatchObject({ url, tracks: [] });
});
