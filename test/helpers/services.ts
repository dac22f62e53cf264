/**
 * Real engines from Debian's packages for tests: redis-server and mosquitto, each started on a free loopback port
 * with a generated config in a temporary directory, ready once it accepts a connection (Redis: answers PING), and
 * stopped when the test (or suite) that made it ends.
 *
 * A missing binary skips the tests that need it, unless CI=true: then it is a failure (.ci/run installs them).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';

const INSTALL_HINT = 'apt-get install -y redis-server redis-sentinel mosquitto';
const SEARCH_PATH = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin'];

/** Absolute path of `command` on PATH (or in an sbin folder, where Debian puts mosquitto), or undefined. */
export function findBinary(command: string): string | undefined {
  for (const dir of SEARCH_PATH) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * `describe` for tests that need these binaries: skipped (with how to install them) when one is missing, or one
 * failing test under CI=true.
 */
export function describeWith(binaries: string[], name: string, body: () => void): void {
  const missing = binaries.filter((b) => findBinary(b) === undefined);
  if (missing.length === 0) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it(`needs ${missing.join(', ')}`, () => {
        throw new Error(`${missing.join(', ')} not installed (CI=true): ${INSTALL_HINT}`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${missing.join(', ')} not installed; ${INSTALL_HINT})`, body);
  }
}

/** A free TCP port on 127.0.0.1: bind :0, read the port, release it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Service {
  port: number;
  url: string;
  dir: string;
  /** Lines the engine wrote (stdout and stderr). */
  output: string[];
  /** Stops the process (SIGTERM, then SIGKILL after 3 s); the port stays reserved for `start()`. */
  stop(): Promise<void>;
  /** Kills the process (SIGKILL, as a crash would); resolves once it exited. */
  kill(): Promise<void>;
  /** Freezes the process (SIGSTOP): connections stay open and nothing answers, like a host that went away. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /** Starts it again on the same port and config (after `stop()`); resolves when ready. */
  start(): Promise<void>;
  /** Stops it for good and removes its directory. Idempotent. */
  close(): Promise<void>;
}

interface ServiceSpec {
  command: string;
  args: (dir: string, port: number) => string[];
  files?: (dir: string, port: number) => Record<string, string>;
  ready: (port: number) => Promise<boolean>;
  scheme: string;
}

async function startService(spec: ServiceSpec): Promise<Service> {
  const binary = findBinary(spec.command);
  if (binary === undefined) throw new Error(`${spec.command} not installed: ${INSTALL_HINT}`);
  const dir = await mkdtemp(join(tmpdir(), `tali-${spec.command}-`));
  const port = await freePort();
  for (const [name, content] of Object.entries(spec.files?.(dir, port) ?? {})) await writeFile(join(dir, name), content);
  const output: string[] = [];
  let child: ChildProcess | undefined;
  let closed = false;

  const start = async () => {
    const proc = spawn(binary, spec.args(dir, port), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    // Never outlive the test process, even when a test fails before its teardown.
    const reap = () => proc.kill('SIGKILL');
    process.once('exit', reap);
    proc.once('exit', () => process.off('exit', reap));
    const collect = (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter((l) => l !== ''));
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    const deadline = performance.now() + 10_000;
    while (!(await spec.ready(port))) {
      if (proc.exitCode !== null) throw new Error(`${spec.command} exited (${proc.exitCode}):\n${output.slice(-20).join('\n')}`);
      if (performance.now() > deadline) throw new Error(`${spec.command} not ready on port ${port} after 10 s:\n${output.slice(-20).join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGCONT'); // if paused: a stopped process would not act on SIGTERM
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    port,
    url: `${spec.scheme}://127.0.0.1:${port}`,
    dir,
    output,
    stop: () => stop(),
    kill: () => stop('SIGKILL'),
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    start: async () => {
      if (closed) throw new Error('service closed');
      if (child === undefined) await start();
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves true if something accepts a TCP connection on the port (and, with `probe`, answers it with `expect`). */
function answers(port: number, probe?: { send: string; expect: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      if (probe === undefined) return done(true);
      socket.write(probe.send);
      let got = '';
      socket.on('data', (chunk) => {
        got += chunk.toString();
        if (got.includes(probe.expect)) done(true);
        else if (/(^|\n)-/.test(got)) done(false); // e.g. -LOADING while it reads its data
      });
    });
  });
}

/**
 * redis-server on a free loopback port. By default it keeps nothing on disk, so a restart comes back empty; with
 * `appendonly` it writes every command to its append-only file (fsync always) and comes back with its data.
 */
export function startRedis(options: { appendonly?: boolean; password?: string; replicaOf?: number; clusterNodeTimeoutMs?: number } = {}): Promise<Service> {
  const auth = options.password === undefined ? '' : `AUTH ${options.password}\r\n`;
  return startService({
    command: 'redis-server',
    scheme: 'redis',
    args: (dir, port) => [join(dir, 'redis.conf')],
    files: (dir, port) => ({
      'redis.conf': [
        `port ${port}`,
        'bind 127.0.0.1',
        'save ""',
        options.appendonly ? 'appendonly yes' : 'appendonly no',
        'appendfsync always',
        `dir ${dir}`,
        'protected-mode yes',
        'loglevel warning',
        // A replica's first sync at once (the default waits 5 s for more replicas to share one transfer).
        'repl-diskless-sync-delay 0',
        // A replica that a failover promotes asks the same password as the primary it replaces.
        ...(options.password === undefined ? [] : [`requirepass ${options.password}`, `masterauth ${options.password}`]),
        ...(options.replicaOf === undefined ? [] : [`replicaof 127.0.0.1 ${options.replicaOf}`]),
        // A Redis Cluster node (slots are assigned by `redis-cli --cluster create`).
        ...(options.clusterNodeTimeoutMs === undefined
          ? []
          : ['cluster-enabled yes', `cluster-config-file ${join(dir, 'nodes.conf')}`, `cluster-node-timeout ${options.clusterNodeTimeoutMs}`]),
      ].join('\n') + '\n',
    }),
    ready: (port) => answers(port, { send: `${auth}PING\r\n`, expect: '+PONG' }),
  });
}

export interface SentinelSpec {
  /** The name the primary is monitored under. */
  name: string;
  primaryPort: number;
  quorum: number;
  /** The primary's (and replicas') password. */
  password: string;
  /** The sentinels' own password (each sentinel also uses it with the others). */
  sentinelPassword: string;
  downAfterMs: number;
  failoverTimeoutMs: number;
}

/** redis-sentinel on a free loopback port, monitoring a primary on loopback (it rewrites its own config file). */
export function startSentinel(spec: SentinelSpec): Promise<Service> {
  return startService({
    command: 'redis-sentinel',
    scheme: 'redis',
    args: (dir) => [join(dir, 'sentinel.conf')],
    files: (dir, port) => ({
      'sentinel.conf': [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        'loglevel notice',
        `requirepass ${spec.sentinelPassword}`,
        `sentinel sentinel-pass ${spec.sentinelPassword}`,
        `sentinel monitor ${spec.name} 127.0.0.1 ${spec.primaryPort} ${spec.quorum}`,
        `sentinel auth-pass ${spec.name} ${spec.password}`,
        `sentinel down-after-milliseconds ${spec.name} ${spec.downAfterMs}`,
        `sentinel failover-timeout ${spec.name} ${spec.failoverTimeoutMs}`,
        `sentinel parallel-syncs ${spec.name} 1`,
      ].join('\n') + '\n',
    }),
    ready: (port) => answers(port, { send: `AUTH ${spec.sentinelPassword}\r\nPING\r\n`, expect: '+PONG' }),
  });
}

export interface MosquittoFiles {
  /** acl_file content. */
  acl: string;
  /** password_file content (lines user:$7$…). */
  passwords: string;
}

/** mosquitto on a free loopback port with a password file and an ACL file; no anonymous clients, no persistence. */
export function startMosquitto(files: MosquittoFiles): Promise<Service> {
  return startService({
    command: 'mosquitto',
    scheme: 'mqtt',
    args: (dir) => ['-c', join(dir, 'mosquitto.conf')],
    files: (dir, port) => ({
      'mosquitto.conf': [
        `listener ${port} 127.0.0.1`,
        // Started as root, mosquitto would switch to the "mosquitto" user, which cannot read this private directory.
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        'allow_anonymous false',
        `password_file ${join(dir, 'passwd')}`,
        `acl_file ${join(dir, 'acl')}`,
        'persistence false',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        'log_type subscribe',
        'log_timestamp false',
      ].join('\n') + '\n',
      passwd: files.passwords,
      acl: files.acl,
    }),
    ready: (port) => answers(port),
  });
}

/** mosquitto_passwd's version line, or undefined when it is not installed. */
export function mosquittoVersion(): string | undefined {
  const binary = findBinary('mosquitto');
  if (binary === undefined) return undefined;
  const out = spawnSync(binary, ['-h'], { encoding: 'utf8' });
  return /mosquitto version (\S+)/.exec(`${out.stdout}${out.stderr}`)?.[1];
}
