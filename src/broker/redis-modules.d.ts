// aedes-persistence-redis 12 ships no types: the part the broker uses.
declare module 'aedes-persistence-redis' {
  import type { Cluster, Redis } from 'ioredis';
  interface RedisPersistenceOptions {
    /** An ioredis connection to use instead of making one. */
    conn?: Redis | Cluster;
    /** The connection is a Redis Cluster: one key per retained message, no multi-key commands. */
    cluster?: boolean;
  }
  // The callback-layer persistence Aedes takes as `persistence`.
  const persistenceRedis: (options?: RedisPersistenceOptions) => unknown;
  export default persistenceRedis;
}
