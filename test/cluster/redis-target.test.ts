/**
 * The `cluster` option read at the edge: one Redis URL, Redis Sentinel's sentinels and primary name, or a Redis
 * Cluster's nodes (src/config/redis-target.ts), with a clear problem for anything else and no password in logs.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { describeRedisTarget, parseRedisTarget } from '../../src/config/redis-target.ts';

function problemOf(cluster: string): string {
  try {
    loadConfig({ flags: { cluster } });
  } catch (err) {
    return (err as ConfigError).problems.join('\n');
  }
  return '';
}

describe('the cluster option', () => {
  it('takes one Redis server as a redis:// or rediss:// URL, or nothing (a single node)', () => {
    expect(parseRedisTarget('')).toBeUndefined();
    expect(parseRedisTarget('redis://:pw@10.0.0.1:6379/2')).toEqual({ kind: 'server', url: 'redis://:pw@10.0.0.1:6379/2' });
    expect(parseRedisTarget('rediss://cache.example:6380')).toEqual({ kind: 'server', url: 'rediss://cache.example:6380' });
    expect(loadConfig({ flags: { cluster: 'redis://127.0.0.1:6379' } }).cluster).toBe('redis://127.0.0.1:6379');
  });

  it('takes Redis Sentinel: the sentinels, the primary name, a database, both passwords', () => {
    expect(parseRedisTarget('redis-sentinel://:p%40ss@10.0.0.1:26380,s2.example,[::1]:26381/mymaster/3?sentinelPassword=s%26p')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26380 },
        { host: 's2.example', port: 26379 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
      db: 3,
      password: 'p@ss',
      sentinelPassword: 's&p',
    });
    expect(parseRedisTarget('redis-sentinel://tali:pw@h:1/m')).toMatchObject({ username: 'tali', password: 'pw', db: 0, sentinels: [{ host: 'h', port: 1 }] });
    const url = 'redis-sentinel://:pw@127.0.0.1:26379/m?sentinelUsername=u&sentinelPassword=sp';
    expect(loadConfig({ env: { TALI_CLUSTER: url } }).cluster).toBe(url);
  });

  it('takes a Redis Cluster: some of its nodes and the password', () => {
    expect(parseRedisTarget('redis-cluster://:pw@10.0.0.1:7000,10.0.0.2')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
      ],
      password: 'pw',
    });
    expect(problemOf('redis-cluster://h:1/3')).toContain('cluster: must be');
    expect(problemOf('redis-cluster://h:0')).toContain('cluster node "h:0" must be host:port');
    expect(describeRedisTarget(parseRedisTarget('redis-cluster://u:secret@h:1,h:2') as never)).toBe('redis-cluster://h:1,h:2');
  });

  it('refuses what it cannot use, saying what is expected', () => {
    expect(problemOf('http://nope')).toContain('cluster: must be a redis:// or rediss:// URL, redis-sentinel://');
    expect(problemOf('redis-sentinel://h:26379')).toContain('cluster: must be');
    expect(problemOf('redis-sentinel://h:26379/')).toContain('cluster: must be');
    expect(problemOf('redis-sentinel://h:99999/m')).toContain('sentinel "h:99999" must be host:port');
    expect(problemOf('redis-sentinel://h:1,/m')).toContain('sentinel "" must be host:port');
    expect(problemOf('redis-sentinel://h:1/m/16')).toContain('database number must be 0–15');
    expect(problemOf('redis-sentinel://h:1/m?password=x')).toContain('unknown parameter "password"');
    expect(problemOf('redis-sentinel://:%E0%A4%A@h:1/m')).toContain('must be %-encoded');
    expect(problemOf('rediss-sentinel://h:1/m')).toContain('cluster: must be');
  });

  it('shows no password in logs', () => {
    const sentinel = parseRedisTarget('redis-sentinel://u:secret@h:1,[::1]:2/m/1?sentinelPassword=other');
    expect(describeRedisTarget(sentinel as never)).toBe('redis-sentinel://h:1,[::1]:2/m/1');
    expect(describeRedisTarget({ kind: 'server', url: 'redis://:secret@h:6379' })).toBe('redis://:***@h:6379');
  });
});
