/**
 * Peers written in Python on Debian's aiortc (test/interop/*.py): a WebRTC stack tali does not ship. Each prints one
 * JSON event per line on stdout; `next()` waits for the first event that matches. Needs /usr/bin/python3 with
 * python3-aiortc, python3-av and python3-paho-mqtt (.ci/run installs them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it, onTestFinished } from 'vitest';
import { withTimeout } from '../helpers/wait.ts';
import type { NetHost } from '../netlink/netns.ts';

export const PYTHON = '/usr/bin/python3';
const INSTALL_HINT = 'apt-get install -y python3-aiortc python3-av python3-paho-mqtt';

/** Why the Python peers cannot run here, or undefined. */
export function aiortcUnavailable(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import aiortc, av, paho.mqtt.client']);
  return probe.status === 0 ? undefined : `needs ${PYTHON} with aiortc, av and paho-mqtt: ${INSTALL_HINT}`;
}

/** `describe` that skips with the install hint when aiortc is missing, and fails instead under CI=true. */
export function describeWithAiortc(name: string, body: () => void): void {
  const missing = aiortcUnavailable();
  if (missing === undefined) describe(name, body);
  else if (process.env.CI === 'true') describe(name, () => it('needs aiortc', () => { throw new Error(`${missing} (CI=true)`); }));
  else describe.skip(`${name} (skipped: ${missing})`, body);
}

export type PyEvent = Record<string, unknown> & { event: string };

export class PythonPeer {
  readonly events: PyEvent[] = [];
  readonly #child: ChildProcess;
  readonly #waiters = new Set<{ match: (e: PyEvent) => boolean; resolve: (e: PyEvent) => void }>();
  readonly #stderr: string[] = [];

  /**
   * Starts test/interop/<script> with args and the MQTT password in TALI_SECRET (inside `host`'s namespace if
   * given); stopped when the test ends.
   */
  constructor(script: string, args: string[], secret: string, host?: NetHost) {
    const path = fileURLToPath(new URL(script, import.meta.url));
    const options = { stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'], env: { ...process.env, TALI_SECRET: secret } };
    this.#child = host ? host.spawn(PYTHON, ['-u', path, ...args], options) : spawn(PYTHON, ['-u', path, ...args], options);
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as PyEvent;
      this.events.push(e);
      for (const waiter of this.#waiters) if (waiter.match(e)) (this.#waiters.delete(waiter), waiter.resolve(e));
    });
    createInterface({ input: this.#child.stderr! }).on('line', (line) => this.#stderr.push(line));
    onTestFinished(() => this.stop());
  }

  /** The first event (already seen or to come) for which `match` holds. */
  next(match: (e: PyEvent) => boolean, ms = 15_000, what = 'an event'): Promise<PyEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    const found = new Promise<PyEvent>((resolve) => this.#waiters.add({ match, resolve }));
    return withTimeout(found, ms, `${what} (events: ${this.events.map((e) => e.event).join(', ')}; stderr: ${this.#stderr.slice(-5).join(' | ')})`);
  }

  /** Waits for an event named `name` with these fields. */
  on(name: string, fields: Record<string, unknown> = {}, ms?: number): Promise<PyEvent> {
    return this.next((e) => e.event === name && Object.entries(fields).every(([k, v]) => e[k] === v), ms, `"${name}" ${JSON.stringify(fields)}`);
  }

  command(line: string): void {
    this.#child.stdin!.write(`${line}\n`);
  }

  /** Asks it to quit (bye, offline card), then kills it if it has not exited within 3 s. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin!.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
