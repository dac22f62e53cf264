/** Child processes of the suite: forked on this Node (type stripping), spoken to over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import { withTimeout } from './util.ts';

const RENICE = new URL('./renice.ts', import.meta.url).pathname;

export class Child<Cmd, Ev extends { type: string }> {
  readonly process: ChildProcess;
  readonly #listeners = new Set<(e: Ev) => void>();
  #exited: Promise<number | null>;

  /** `nice`: the child's threads run at this nice value (./renice.ts), 0 = as this process. */
  constructor(file: string | URL, options: { execArgv?: string[]; env?: NodeJS.ProcessEnv; nice?: number } = {}) {
    const nice = options.nice ?? 0;
    this.process = fork(file instanceof URL ? file.pathname : file, [], {
      execArgv: [...(nice > 0 ? ['--import', RENICE] : []), ...(options.execArgv ?? [])],
      env: { ...(options.env ?? process.env), ...(nice > 0 && { BENCH_NICE: String(nice) }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
    });
    this.process.on('message', (m) => {
      const event = m as Ev;
      if (event.type === 'error') console.error(`[child ${this.process.pid}]`, (event as unknown as { message: string }).message);
      for (const l of [...this.#listeners]) l(event);
    });
    this.#exited = new Promise((resolve) => this.process.once('exit', (code) => resolve(code)));
  }

  send(command: Cmd): void {
    this.process.send(command as object);
  }

  on(listener: (e: Ev) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The first event of `type` (matching `match`), or a timeout. */
  next<T extends Ev['type']>(type: T, ms = 60_000, match: (e: Extract<Ev, { type: T }>) => boolean = () => true): Promise<Extract<Ev, { type: T }>> {
    let off = () => {};
    const seen = new Promise<Extract<Ev, { type: T }>>((resolve, reject) => {
      off = this.on((e) => {
        if (e.type === 'error') reject(new Error((e as unknown as { message: string }).message));
        else if (e.type === type && match(e as Extract<Ev, { type: T }>)) resolve(e as Extract<Ev, { type: T }>);
      });
    });
    return withTimeout(seen, ms, `child event ${type}`).finally(off);
  }

  /** Disconnects IPC (the child exits on it) and kills it if it lingers. */
  async close(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    if (this.process.connected) this.process.disconnect();
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    await this.#exited;
    clearTimeout(timer);
  }
}
