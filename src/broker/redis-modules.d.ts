// aedes-persistence-redis 12 ships no types: the part the broker uses.
declare module 'aedes-persistence-redis' {
  import type { Redis } from 'ioredis';
  interface RedisPersistenceOptions {
    /** An ioredis connection to use instead of making one. */
    conn?: Redis;
  }
  // The callback-layer persistence Aedes takes as `persistence`.
  const persistenceRedis: (options?: RedisPersistenceOptions) => unknown;
  export default persistenceRedis;
}
