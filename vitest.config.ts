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
