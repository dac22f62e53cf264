/**
 * Mosquitto from Debian's package, started on a free loopback port for one run and stopped after. Configured to be
 * comparable with tali's broker: Nagle off, no persistence, no in-flight cap, and an ACL file with the same rule
 * shape (a device writes only its own up topic; subscribers may read every device's up topic).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, sleep } from './util.ts';

export interface Mosquitto {
  port: number;
  pid: number;
  version: string;
  /** CPU milliseconds the broker has used so far. */
  cpuMs(): Promise<{ user: number; system: number }>;
  stop(): Promise<void>;
}

export function findMosquitto(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin'];
  return dirs.map((d) => join(d, 'mosquitto')).find((p) => existsSync(p));
}

export async function startMosquitto(): Promise<Mosquitto | undefined> {
  const bin = findMosquitto();
  if (bin === undefined) return undefined;
  const dir = await mkdtemp(join(tmpdir(), 'tali-bench-mosquitto-'));
  const port = await freePort();
  await writeFile(join(dir, 'acl'), 'topic read tali/v1/device/+/up\npattern write tali/v1/device/%c/up\npattern write tali/v1/device/%c/status\ntopic read tali/v1/bridge/+/status\n');
  await writeFile(
    join(dir, 'mosquitto.conf'),
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      `acl_file ${join(dir, 'acl')}`,
      'set_tcp_nodelay true',
      'persistence false',
      'max_inflight_messages 0',
      'max_queued_messages 100000',
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  // Started as root, mosquitto drops to its own user before reading the ACL file: let it read the directory.
  await chmod(dir, 0o755);
  const child: ChildProcess = spawn(bin, ['-c', join(dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Not an IPC child: make sure it does not outlive this process (killed run, crash).
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));
  // Ready when the port accepts a connection.
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' }, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) break;
    if (i > 100 || child.exitCode !== null) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`mosquitto did not start: ${stderr.trim()}`);
    }
    await sleep(50);
  }
  const versionOut = await new Promise<string>((resolve) => {
    const v = spawn(bin, ['-h'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    v.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    v.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    v.once('exit', () => resolve(out));
  });
  const pid = child.pid as number;
  const ticks = 100; // USER_HZ on Linux
  return {
    port,
    pid,
    version: /mosquitto version ([\d.]+)/.exec(versionOut)?.[1] ?? 'unknown',
    cpuMs: async () => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return { user: (Number(fields[11]) * 1000) / ticks, system: (Number(fields[12]) * 1000) / ticks };
    },
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
