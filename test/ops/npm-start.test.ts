/**
 * The README's first command ends in `npm start`: it must start the bridge on embedded defaults (here with free
 * ports and a fresh data directory passed through) and stop cleanly on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';
import { withTimeout } from '../helpers/wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

it('npm start runs the bridge and reports its ports; SIGTERM stops it', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'tali-npm-start-'));
  onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
  // detached: a process group of its own, so the signal reaches node behind npm and sh.
  const child = spawn('npm', ['start', '--silent', '--', '--mqtt-port', '0', '--http-port', '0', '--data-dir', dataDir], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    await exited;
  });
  const messages: string[] = [];
  const lines = createInterface({ input: child.stdout! });
  // stdout closes when every process of the group that holds it (npm, sh, node) is gone.
  const drained = new Promise<void>((resolve) => lines.once('close', resolve));
  const ready = new Promise<Record<string, unknown>>((resolve) => {
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return;
      const record = JSON.parse(line) as Record<string, unknown>;
      messages.push(String(record.msg));
      if (record.msg === 'tali ready') resolve(record);
    });
  });
  const record = await withTimeout(ready, 20_000, 'the "tali ready" line');
  expect(record.mqttPort).toEqual(expect.any(Number));
  expect(record.httpPort).toEqual(expect.any(Number));
  expect((await fetch(`http://127.0.0.1:${record.httpPort as number}/healthz`)).status).toBe(200);
  // npm itself dies of the signal; what matters is that the bridge drained and said so.
  process.kill(-child.pid!, 'SIGTERM');
  await withTimeout(drained, 10_000, 'every process to exit after SIGTERM');
  expect(messages).toContain('tali stopped');
});
