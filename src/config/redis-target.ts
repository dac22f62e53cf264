/**
 * The `cluster` option: which Redis a cluster's nodes share, read once at the edge.
 *
 * - `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS): one Redis server.
 * - `redis-sentinel://[user:password@]host:port[,host:port…]/name[/db][?sentinelUsername=…&sentinelPassword=…]`:
 *   the primary that Redis Sentinel names `name`, found through these sentinels (port 26379 when left out). The
 *   user and password are the primary's (and its replicas'); sentinels that need their own give them in the query.
 * - `redis-cluster://[user:password@]host:port[,host:port…]`: a Redis Cluster, found from these nodes (port 6379 when
 *   left out; one is enough, ioredis learns the others and the slots from it).
 */

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { kind: 'server'; url: string }
  | {
      kind: 'sentinel';
      sentinels: readonly HostPort[];
      /** The primary's name in the sentinels' configuration (`sentinel monitor NAME …`). */
      name: string;
      db: number;
      username?: string;
      password?: string;
      sentinelUsername?: string;
      sentinelPassword?: string;
    }
  | { kind: 'cluster'; nodes: readonly HostPort[]; username?: string; password?: string };

const SERVER = /^rediss?:\/\/\S+$/;
const SENTINEL = /^redis-sentinel:\/\/(?:([^@/?#\s]*)@)?([^@/?#\s]+)\/([^/?#\s]+)(?:\/(\d{1,2}))?\/?(?:\?(\S*))?$/;
const CLUSTER = /^redis-cluster:\/\/(?:([^@/?#\s]*)@)?([^@/?#\s]+)\/?$/;
const SENTINEL_QUERY = new Set(['sentinelUsername', 'sentinelPassword']);

export const REDIS_TARGET_HINT =
  'a redis:// or rediss:// URL, redis-sentinel://[user:password@]host:port[,host:port…]/name[/db] for Redis Sentinel, or redis-cluster://[user:password@]host:port[,host:port…] for a Redis Cluster';

/** The target of a `cluster` value, or a problem saying what is wrong with it. Empty: undefined (a single node). */
export function parseRedisTarget(value: string): RedisTarget | { problem: string } | undefined {
  if (value === '') return undefined;
  if (SERVER.test(value)) return { kind: 'server', url: value };
  const cluster = CLUSTER.exec(value);
  if (cluster !== null) {
    const nodes: HostPort[] = [];
    for (const entry of cluster[2]!.split(',')) {
      const hostPort = parseHostPort(entry, 6379);
      if (hostPort === undefined) return { problem: `cluster node "${entry}" must be host:port (IPv6 in brackets)` };
      nodes.push(hostPort);
    }
    const target: RedisTarget & { kind: 'cluster' } = { kind: 'cluster', nodes };
    if (cluster[1] !== undefined) {
      const [user, password] = splitUserinfo(cluster[1]);
      if (user === undefined || password === undefined) return { problem: 'user and password must be %-encoded' };
      if (user !== '') target.username = user;
      if (password !== '') target.password = password;
    }
    return target;
  }
  const match = SENTINEL.exec(value);
  if (match === null) return { problem: `must be ${REDIS_TARGET_HINT}` };
  const [, userinfo, hosts, rawName, rawDb, query] = match;
  const sentinels: HostPort[] = [];
  for (const entry of hosts!.split(',')) {
    const hostPort = parseHostPort(entry, 26379);
    if (hostPort === undefined) return { problem: `sentinel "${entry}" must be host:port (IPv6 in brackets)` };
    sentinels.push(hostPort);
  }
  const name = decode(rawName!);
  const db = rawDb === undefined ? 0 : Number(rawDb);
  if (name === undefined || name === '') return { problem: 'the primary\'s name after the sentinels must be given (…/mymaster)' };
  if (db > 15) return { problem: 'the database number must be 0–15' };
  const target: RedisTarget & { kind: 'sentinel' } = { kind: 'sentinel', sentinels, name, db };
  if (userinfo !== undefined) {
    const [user, password] = splitUserinfo(userinfo);
    if (user === undefined || password === undefined) return { problem: 'user and password must be %-encoded' };
    if (user !== '') target.username = user;
    if (password !== '') target.password = password;
  }
  for (const [key, raw] of new URLSearchParams(query ?? '')) {
    if (!SENTINEL_QUERY.has(key)) return { problem: `unknown parameter "${key}" (sentinelUsername, sentinelPassword)` };
    if (raw !== '') target[key as 'sentinelUsername' | 'sentinelPassword'] = raw;
  }
  return target;
}

/** A problem with a `cluster` value, or undefined when it is valid (for the option's check). */
export function redisTargetProblem(value: string): string | undefined {
  const target = parseRedisTarget(value);
  return target !== undefined && 'problem' in target ? target.problem : undefined;
}

/** A valid `cluster` value as its target (the config was checked at the edge, so this does not fail). */
export function redisTarget(value: string): RedisTarget {
  const target = parseRedisTarget(value);
  if (target === undefined || 'problem' in target) throw new Error(`cluster: ${target?.problem ?? 'empty'}`);
  return target;
}

/** What a log may say about the target: no passwords. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.kind === 'cluster') return `redis-cluster://${target.nodes.map(hostPortText).join(',')}`;
  if (target.kind === 'sentinel') {
    return `redis-sentinel://${target.sentinels.map(hostPortText).join(',')}/${target.name}/${target.db}`;
  }
  try {
    const parsed = new URL(target.url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://?';
  }
}

function hostPortText({ host, port }: HostPort): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function parseHostPort(entry: string, defaultPort: number): HostPort | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(entry);
  if (match === null) return undefined;
  const port = match[3] === undefined ? defaultPort : Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (match[1] ?? match[2])!, port };
}

function splitUserinfo(userinfo: string): [string | undefined, string | undefined] {
  const colon = userinfo.indexOf(':');
  if (colon === -1) return [decode(userinfo), ''];
  return [decode(userinfo.slice(0, colon)), decode(userinfo.slice(colon + 1))];
}

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}
