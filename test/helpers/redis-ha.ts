/**
 * A Redis Sentinel group from Debian's redis-server and redis-sentinel on free loopback ports: a primary, a replica
 * of it and three sentinels (quorum 2), all with passwords, and short timings so a failover takes a few seconds.
 * Ready once the replica is in sync and every sentinel knows the replica and the two other sentinels (otherwise a
 * failover could not happen). `switched()` resolves on a sentinel's `+switch-master`, the moment a failover is done.
 */
import { Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import { startRedis, startSentinel, type Service } from './services.ts';
import { eventually, withTimeout } from './wait.ts';

export interface SentinelGroup {
  primary: Service;
  replica: Service;
  sentinels: Service[];
  name: string;
  /** The `cluster` option for tali: redis-sentinel://…/name with both passwords. */
  clusterUrl: string;
  /**
   * Subscribes to `+switch-master` on a sentinel (resolves once subscribed: call it before the kill); `switched`
   * then resolves on the next one, with when it came and the new primary's port.
   */
  watchFailover(ms?: number): Promise<{ switched: Promise<{ at: number; port: number }> }>;
}

const NAME = 'tali-primary';
const PASSWORD = 'data-secret';
const SENTINEL_PASSWORD = 'sentinel-secret';

export interface SentinelTimings {
  downAfterMs: number;
  failoverTimeoutMs: number;
}

/** Starts the group; everything is stopped and removed when the test ends. */
export async function startSentinelGroup(timings: SentinelTimings = { downAfterMs: 500, failoverTimeoutMs: 3000 }): Promise<SentinelGroup> {
  const primary = await startRedis({ password: PASSWORD });
  onTestFinished(() => primary.close());
  const replica = await startRedis({ password: PASSWORD, replicaOf: primary.port });
  onTestFinished(() => replica.close());
  await eventually(async () => /master_link_status:up/.test(String(await command(replica.port, PASSWORD, 'INFO', 'replication'))), 10_000, 'the replica in sync');
  const sentinels: Service[] = [];
  for (let i = 0; i < 3; i++) {
    const sentinel = await startSentinel({ name: NAME, primaryPort: primary.port, quorum: 2, password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD, ...timings });
    onTestFinished(() => sentinel.close());
    sentinels.push(sentinel);
  }
  // Sentinels find each other through hello messages on the primary (every 2 s) and the replica through its INFO.
  await eventually(
    async () => {
      for (const sentinel of sentinels) {
        const fields = pairs((await command(sentinel.port, SENTINEL_PASSWORD, 'SENTINEL', 'MASTER', NAME)) as string[]);
        if (fields['num-other-sentinels'] !== '2' || fields['num-slaves'] !== '1' || fields.flags !== 'master') return false;
      }
      return true;
    },
    15_000,
    'every sentinel to know the replica and the other two sentinels',
  );
  const hosts = sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  return {
    primary,
    replica,
    sentinels,
    name: NAME,
    clusterUrl: `redis-sentinel://:${PASSWORD}@${hosts}/${NAME}?sentinelPassword=${SENTINEL_PASSWORD}`,
    watchFailover: (ms = 30_000) => watchFailover(sentinels[0]!.port, ms),
  };
}

async function watchFailover(port: number, ms: number): Promise<{ switched: Promise<{ at: number; port: number }> }> {
  const sub = new Redis({ host: '127.0.0.1', port, password: SENTINEL_PASSWORD, retryStrategy: () => null, lazyConnect: true });
  sub.on('error', () => {});
  await sub.connect();
  await sub.subscribe('+switch-master');
  const seen = new Promise<{ at: number; port: number }>((resolve) =>
    sub.on('message', (_channel: string, message: string) => {
      // "<name> <old ip> <old port> <new ip> <new port>"
      const [name, , , , newPort] = message.split(' ');
      if (name === NAME) resolve({ at: performance.now(), port: Number(newPort) });
    }),
  );
  const switched = withTimeout(seen, ms, 'a sentinel to announce +switch-master').finally(() => sub.disconnect());
  switched.catch(() => {}); // awaited by the test; not an unhandled rejection if the test failed before
  onTestFinished(() => sub.disconnect());
  return { switched };
}

/** One command on a fresh connection (the answer as ioredis gives it). */
async function command(port: number, password: string, ...args: string[]): Promise<unknown> {
  const conn = new Redis({ host: '127.0.0.1', port, password, retryStrategy: () => null, lazyConnect: true, maxRetriesPerRequest: 0 });
  conn.on('error', () => {});
  try {
    await conn.connect();
    return await conn.call(args[0]!, ...args.slice(1));
  } finally {
    conn.disconnect();
  }
}

function pairs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) out[list[i]!] = list[i + 1]!;
  return out;
}
