/**
 * `tali start` as a process of its own (bin/tali.js on the Node running the tests), for what only a real process
 * shows: signals (SIGTERM drains, SIGKILL leaves state behind), exit codes, a restart on the same data directory.
 * Its JSON log lines are collected; the process is killed when the test ends, if it still runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { withTimeout } from './wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface TaliProcess {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  /** Resolves with the first log record that matches. */
  log(match: (record: Record<string, unknown>) => boolean, what: string, ms?: number): Promise<Record<string, unknown>>;
  /** Resolves with the "tali ready" line (its ports). */
  ready(ms?: number): Promise<{ mqttPort: number; httpPort: number }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** What it wrote to stderr so far (a start error's one line). */
  stderr(): string;
}

/** `env`: its environment (default: the tests'). */
export function startTali(args: string[], env: NodeJS.ProcessEnv = process.env): TaliProcess {
  // process.execPath: the Node running the tests (the project's Node 24), not whatever `node` is first on PATH.
  const child = spawn(process.execPath, [join(ROOT, 'bin/tali.js'), 'start', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ msg: line });
    }
    for (const wake of waiters) wake();
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const log: TaliProcess['log'] = (match, what, ms = 15_000) => {
    let wake!: () => void;
    const found = new Promise<Record<string, unknown>>((resolve, reject) => {
      wake = () => {
        const hit = logs.find(match);
        if (hit) resolve(hit);
        else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`tali exited (${child.exitCode ?? child.signalCode}) before ${what}: ${stderr}`));
      };
      waiters.add(wake);
      child.once('exit', wake);
      wake();
    });
    return withTimeout(found, ms, what).finally(() => waiters.delete(wake));
  };
  return {
    child,
    logs,
    exited,
    stderr: () => stderr,
    log,
    ready: async (ms = 20_000) => (await log((r) => r.msg === 'tali ready', 'the ready line', ms)) as unknown as { mqttPort: number; httpPort: number },
  };
}
