/**
 * Debian's coturn (`turnserver`) for tests: one TURN server on a free port of a given address, with `use-auth-secret`
 * (the TURN REST scheme the bridge mints for) and its secrets in an SQLite database that coturn reads at every
 * authentication, so a test can rotate them while allocations live. Logs go to stdout, kept in `log`.
 *
 *   const turn = await Coturn.start({ address: '127.0.0.1', secrets: ['s1'] });
 *   onTestFinished(() => turn.close());
 *   turn.url  // turn:127.0.0.1:PORT?transport=udp
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';

export const TURNSERVER = 'turnserver';
export const REALM = 'tali.test';

/** Why coturn cannot run here, or undefined when it can. */
export function coturnUnavailable(): string | undefined {
  const probe = spawnSync(TURNSERVER, ['--version']);
  return probe.error ? 'needs coturn (turnserver): apt-get install -y coturn' : undefined;
}

export interface CoturnOptions {
  /** Where it listens and relays from (an address of this host or a namespace link's host side). */
  address: string;
  /** Shared secrets it accepts (use-auth-secret). */
  secrets: readonly string[];
  /** Longest allocation lifetime it grants, in s (coturn's default 3600); short ones make clients refresh often. */
  maxAllocateLifetimeS?: number;
  /** Relay to loopback peers too (coturn refuses them by default): for peers that all run on 127.0.0.1. */
  allowLoopbackPeers?: boolean;
}

export class Coturn {
  readonly address: string;
  readonly port: number;
  /** Every line coturn printed. */
  readonly log: string[] = [];
  /** When each line of `log` arrived (ms since the epoch). */
  readonly logTimes: number[] = [];
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly #db: string;
  /** waitForLog() calls: each gets every new line, and undefined when coturn exits. */
  readonly #waiters = new Set<(line: string | undefined) => void>();
  #closed: Promise<void> | undefined;

  private constructor(address: string, port: number, child: ChildProcess, dir: string) {
    this.address = address;
    this.port = port;
    this.#child = child;
    this.#dir = dir;
    this.#db = join(dir, 'turndb.sqlite');
    for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => this.#line(line));
    child.once('exit', () => {
      for (const waiter of [...this.#waiters]) waiter(undefined);
    });
  }

  /** turn: URL over UDP (RFC 7065). */
  get url(): string {
    return `turn:${this.address}:${this.port}?transport=udp`;
  }

  static async start(options: CoturnOptions): Promise<Coturn> {
    const dir = await mkdtemp(join(tmpdir(), 'tali-coturn-'));
    const port = await freePort(options.address);
    const conf = [
      `listening-ip=${options.address}`,
      `relay-ip=${options.address}`,
      `listening-port=${port}`,
      'use-auth-secret',
      `userdb=${join(dir, 'turndb.sqlite')}`,
      `realm=${REALM}`,
      'fingerprint',
      'no-tls',
      'no-dtls',
      'no-cli',
      'no-tcp-relay',
      'log-file=stdout',
      'simple-log',
      'verbose',
      `pidfile=${join(dir, 'turnserver.pid')}`,
      ...(options.maxAllocateLifetimeS ? [`max-allocate-lifetime=${options.maxAllocateLifetimeS}`] : []),
      ...(options.allowLoopbackPeers ? ['allow-loopback-peers'] : []),
    ];
    await writeFile(join(dir, 'turnserver.conf'), `${conf.join('\n')}\n`);
    // coturn creates its tables lazily; this one (its schema, turndb's turn_secret) must exist for setSecrets(). The
    // secrets go in before coturn starts: written while it set up its database, they met "database is locked" (2 in
    // 11 runs of test/turn/credentials.test.ts).
    const db = new DatabaseSync(join(dir, 'turndb.sqlite'));
    db.exec("CREATE TABLE turn_secret (realm varchar(127) default '', value varchar(127), primary key (realm,value))");
    db.close();
    writeSecrets(join(dir, 'turndb.sqlite'), options.secrets);
    const child = spawn(TURNSERVER, ['-c', join(dir, 'turnserver.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const turn = new Coturn(options.address, port, child, dir);
    try {
      // Ready when its UDP listener on our port is open (it creates the database before that) and every relay thread
      // is up: until coturn says how many there are, a client's second request can reach another thread than its
      // first, which knows neither its session nor its nonce and answers 438 (first allocation after start: 3 in 20
      // with the UDP listener line alone, 6 in 20 with relay-threads=8; 0 in 20 once this line was out).
      await turn.waitForLog(new RegExp(`UDP listener opened on\\s*:\\s*${options.address.replace(/\./g, '\\.')}:${port}`), 10_000);
      await turn.waitForLog(/Total General servers: \d+/, 10_000);
    } catch (err) {
      await turn.close();
      throw err;
    }
    return turn;
  }

  /** Replaces the secrets coturn accepts; it reads them at the next authentication (new allocations). */
  setSecrets(secrets: readonly string[]): void {
    writeSecrets(this.#db, secrets);
  }

  /**
   * Resolves at the first log line matching `pattern` from line `from` on (past or future); rejects after `timeoutMs`
   * or if coturn exits.
   */
  waitForLog(pattern: RegExp, timeoutMs: number, from = 0): Promise<string> {
    const found = this.log.slice(from).find((line) => pattern.test(line));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (line: string | undefined) => {
        if (line !== undefined && !pattern.test(line)) return;
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        if (line === undefined) reject(new Error(`turnserver exited (${this.#child.exitCode}): ${this.log.slice(-5).join(' | ')}`));
        else resolve(line);
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`turnserver: no log line matching ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  #line(line: string): void {
    this.log.push(line);
    this.logTimes.push(Date.now());
    for (const waiter of [...this.#waiters]) waiter(line);
  }

  /** Freezes coturn (SIGSTOP): a TURN server that does not answer, until resume(). */
  pause(): void {
    this.#child.kill('SIGSTOP');
  }

  resume(): void {
    this.#child.kill('SIGCONT');
  }

  /** Stops coturn (SIGTERM, then SIGKILL after 2 s) and removes its files. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const child = this.#child;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGCONT'); // a paused coturn would not act on SIGTERM
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      await rm(this.#dir, { recursive: true, force: true });
    })();
    return this.#closed;
  }
}

/** Replaces the realm's secrets in coturn's database; waits (SQLite busy timeout) while coturn holds its lock. */
function writeSecrets(path: string, secrets: readonly string[]): void {
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    db.exec('BEGIN IMMEDIATE');
    db.prepare('DELETE FROM turn_secret WHERE realm = ?').run(REALM);
    const insert = db.prepare('INSERT INTO turn_secret (realm, value) VALUES (?, ?)');
    for (const secret of secrets) insert.run(REALM, secret);
    db.exec('COMMIT');
  } finally {
    db.close();
  }
}

/** A port free for both UDP and TCP on `address` (coturn listens on both). */
async function freePort(address: string): Promise<number> {
  for (;;) {
    const udp = createSocket('udp4');
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, address, () => resolve(udp.address().port));
    });
    const tcp = createServer();
    const free = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false));
      tcp.listen(port, address, () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (free) {
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      return port;
    }
  }
}
