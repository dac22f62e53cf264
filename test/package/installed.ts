/**
 * The package as an outside project gets it: `npm pack` in the repository (its prepack builds dist/), then the
 * tarball installed in a fresh folder outside the repository. Dependencies come from the npm cache that `npm ci`
 * filled, pinned by the repository's own lock file (`npm ci --offline` with a lock derived from it): the same
 * versions the suite tests, no registry round trip, and a missing tarball fails instead of hiding behind the network.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { withTimeout } from '../helpers/wait.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

export interface InstalledPackage {
  /** The folder outside the repository with node_modules/tali in it. */
  app: string;
  tarball: string;
  /** Milliseconds spent in `npm pack` (with the build) and in the install. */
  timings: { packMs: number; installMs: number };
  remove(): Promise<void>;
}

export async function packAndInstall(): Promise<InstalledPackage> {
  const dir = await mkdtemp(join(tmpdir(), 'tali-package-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    let t0 = performance.now();
    await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const packMs = performance.now() - t0;
    const tarball = join(dir, (await readdir(dir)).find((f) => f.endsWith('.tgz'))!);
    const app = join(dir, 'app');
    await writeLockedApp(app, tarball);
    t0 = performance.now();
    await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, maxBuffer: 16 * 1024 * 1024 });
    return { app, tarball, timings: { packMs, installMs: performance.now() - t0 }, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

/** A consumer project depending on the tarball, with the repository's lock entries for everything else. */
async function writeLockedApp(app: string, tarball: string): Promise<void> {
  await mkdir(app);
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  const spec = `file:${tarball}`;
  const integrity = `sha512-${createHash('sha512').update(await readFile(tarball)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'tali-consumer', dependencies: { tali: spec } },
    'node_modules/tali': { version: pkg.version, resolved: spec, integrity, dependencies: pkg.dependencies, bin: pkg.bin, engines: pkg.engines },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path !== '' && !entry.dev && !entry.devOptional) packages[path] = entry;
  }
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'tali-consumer', private: true, type: 'module', dependencies: { tali: spec } }, null, 2));
  await writeFile(join(app, 'package-lock.json'), JSON.stringify({ name: 'tali-consumer', lockfileVersion: 3, requires: true, packages }, null, 2));
}

/** A child process whose stdout is JSON lines (pino logs, the examples' events), with its teardown. */
export class JsonLines {
  readonly child: ChildProcess;
  readonly records: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<number | null>;
  readonly #waiters = new Set<() => void>();

  constructor(command: string, args: string[], options: { cwd: string; env?: Record<string, string> }) {
    this.child = spawn(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      this.records.push(JSON.parse(line) as Record<string, unknown>);
      for (const wake of this.#waiters) wake();
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
  }

  /** The first record (already printed or still to come) that matches. */
  next(match: (record: Record<string, unknown>) => boolean, ms: number, what: string): Promise<Record<string, unknown>> {
    let wake!: () => void;
    const found = new Promise<Record<string, unknown>>((resolve) => {
      wake = () => {
        const record = this.records.find(match);
        if (record) resolve(record);
      };
      this.#waiters.add(wake);
      wake();
    });
    return withTimeout(found, ms, `${what} (stderr: ${this.stderr.slice(-5).join(' | ')})`).finally(() => this.#waiters.delete(wake));
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}
