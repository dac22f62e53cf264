/**
 * Redis without a single point, from Debian's redis-server, redis-sentinel and redis-cli on free loopback ports, all
 * with passwords and short timings so that a failover takes a few seconds:
 * - a Sentinel group: a primary, a replica of it and three sentinels (quorum 2). Ready once the replica is in sync
 *   and every sentinel knows the replica and the two other sentinels (otherwise no failover could happen).
 *   `watchFailover()` resolves on a sentinel's `+switch-master`, the moment a failover is done.
 * - a Redis Cluster: three primaries with a replica each, slots assigned by `redis-cli --cluster create`. Ready once
 *   every node says `cluster_state:ok` and every replica is in sync.
 */
import { spawnSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { onTestFinished } from 'vitest';
import { findBinary, startRedis, startSentinel, type Service } from './services.ts';
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
  /** Asks a sentinel for a failover now (`SENTINEL FAILOVER`): the primary stays up and becomes a replica. */
  failover(): Promise<void>;
  /** The names of the clients connected to the data node on `port` (`CLIENT LIST`). */
  clientNames(port: number): Promise<string[]>;
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
    failover: async () => void (await command(sentinels[0]!.port, SENTINEL_PASSWORD, 'SENTINEL', 'FAILOVER', NAME)),
    clientNames: async (port) => [...String(await command(port, PASSWORD, 'CLIENT', 'LIST')).matchAll(/ name=(\S*)/g)].map((m) => m[1]!),
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

export interface RedisClusterGroup {
  /** Primaries first, then replicas (as `redis-cli --cluster create` paired them). */
  nodes: Service[];
  clusterUrl: string;
}

/** A Redis Cluster of `primaries` primaries with one replica each, slots assigned; ready once every node says ok. */
export async function startRedisCluster(primaries = 3, clusterNodeTimeoutMs = 1000): Promise<RedisClusterGroup> {
  const nodes: Service[] = [];
  for (let i = 0; i < primaries * 2; i++) {
    const node = await startRedis({ password: PASSWORD, clusterNodeTimeoutMs });
    onTestFinished(() => node.close());
    nodes.push(node);
  }
  const cli = findBinary('redis-cli');
  if (cli === undefined) throw new Error('redis-cli not installed: apt-get install -y redis-tools');
  const created = spawnSync(cli, ['-a', PASSWORD, '--no-auth-warning', '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  await eventually(
    async () => {
      for (const node of nodes) {
        const info = String(await command(node.port, PASSWORD, 'CLUSTER', 'INFO'));
        if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${nodes.length}`)) return false;
      }
      // A replica that never synced cannot be promoted.
      for (const node of nodes.slice(primaries)) if (!(await replicationOf(node.port)).includes('master_link_status:up')) return false;
      return true;
    },
    20_000,
    'every Redis Cluster node to say cluster_state:ok',
  );
  return { nodes, clusterUrl: `redis-cluster://:${PASSWORD}@${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}` };
}

/** The node's role and, for a replica, whether its link to its primary is up. */
export async function replicationOf(port: number): Promise<string> {
  return String(await command(port, PASSWORD, 'INFO', 'replication'));
}

/** The port of the Redis Cluster primary that holds `key`'s slot (asked of the node on `port`). */
export async function primaryOf(port: number, key: string): Promise<number> {
  const slot = Number(await command(port, PASSWORD, 'CLUSTER', 'KEYSLOT', key));
  const ranges = (await command(port, PASSWORD, 'CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
  const range = ranges.find(([from, to]) => slot >= from && slot <= to);
  if (range === undefined) throw new Error(`no primary for slot ${slot}`);
  return range[2][1];
}
