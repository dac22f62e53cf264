import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests run against the patched werift this checkout describes, or not at all.
    globalSetup: ['test/helpers/installed-patches.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Real UDP/TCP sockets and werift peers: keep files in separate forks, a couple at a time on a 2-core box.
    pool: 'forks',
    maxWorkers: 2,
  },
});
