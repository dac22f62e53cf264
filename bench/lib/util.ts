/** Small helpers the measurements share: timeouts, sleeping, free ports, event waits. */
import { createServer, type AddressInfo } from 'node:net';

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The soft limit on open files of this process (what `ulimit -n` says). */
export async function openFileLimit(): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const match = /Max open files\s+(\d+|unlimited)/.exec(limits);
  if (!match) return 1024;
  return match[1] === 'unlimited' ? 1_000_000 : Number(match[1]);
}
