import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * Test bridges run media in worker threads, the default (one per core: test/helpers/bridge.ts). The "one-worker"
 * project runs the media-path files again with TALI_MEDIA_WORKERS=1 (everything on the main thread, the other mode
 * the product supports) rather than the whole suite twice; `TALI_MEDIA_WORKERS=1 npm test` runs all of it that way.
 */
const ONE_WORKER_FILES = ['test/relay/relay.test.ts', 'test/bridge/session.test.ts', 'test/ops/recording.test.ts'];
const oneWorkerProject = process.env.TALI_MEDIA_WORKERS === undefined;

export default defineConfig({
  test: {
    // Tests run against the patched werift this checkout describes, or not at all.
    globalSetup: ['test/helpers/installed-patches.ts'],
    // Media worker threads of test bridges take Node's compile cache from NODE_COMPILE_CACHE (src/media/worker-media.ts):
    // each of the suite's many thread boots loads its ~300 modules compiled once (~0.55 → ~0.3 s of CPU per thread).
    // In this checkout's node_modules/.cache: written by its user only, since cached code runs as that user.
    env: { NODE_COMPILE_CACHE: join(import.meta.dirname, 'node_modules/.cache/tali-tests/compile') },
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Real UDP/TCP sockets and werift peers: keep files in separate forks, a couple at a time on a 2-core box.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'default', include: ['test/**/*.test.ts'] } },
      ...(oneWorkerProject ? [{ extends: true, test: { name: 'one-worker', include: ONE_WORKER_FILES, env: { TALI_MEDIA_WORKERS: '1' } } }] : []),
    ],
  },
});
