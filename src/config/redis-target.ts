/**
 * The `cluster` option: which Redis a cluster's nodes share, read once at the edge.
 *
 * - `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS): one Redis server.
 * - `redis-sentinel://[user:password@]host:port[,host:port…]/name[/db][?sentinelUsername=…&sentinelPassword=…]`:
 *   the primary that Redis Sentinel names `name`, found through these sentinels (port 26379 when left out). The
 *   user and password are the primary's (and its replicas'); sentinels that need their own give them in the query.
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
    };

const SERVER = /^rediss?:\/\/\S+$/;
const SENTINEL = /^redis-sentinel:\/\/(?:([^@/?#\s]*)@)?([^@/?#\s]+)\/([^/?#\s]+)(?:\/(\d{1,2}))?\/?(?:\?(\S*))?$/;
const SENTINEL_QUERY = new Set(['sentinelUsername', 'sentinelPassword']);

export const REDIS_TARGET_HINT =
  'a redis:// or rediss:// URL, or redis-sentinel://[user:password@]host:port[,host:port…]/name[/db] for Redis Sentinel';

/** The target of a `cluster` value, or a problem saying what is wrong with it. Empty: undefined (a single node). */
export function parseRedisTarget(value: string): RedisTarget | { problem: string } | undefined {
  if (value === '') return undefined;
  if (SERVER.test(value)) return { kind: 'server', url: value };
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
  if (target.kind === 'sentinel') {
    const hosts = target.sentinels.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`).join(',');
    return `redis-sentinel://${hosts}/${target.name}/${target.db}`;
  }
  try {
    const parsed = new URL(target.url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://?';
  }
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
