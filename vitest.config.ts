import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Loaded first in every fork: no test may resolve a name or connect outside loopback. The guard
    // carries itself into the child processes and worker threads the tests start; the log it
    // writes to is set up by global-setup, whose teardown fails the run on a violation.
    execArgv: ['--import', new URL('./test/support/network-guard.mjs', import.meta.url).href],
    // Makes a throwaway CA and sets NODE_EXTRA_CA_CERTS before the forks start (Node reads it only at
    // start-up), and names the network guard's log file.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // expect.poll gives up after 1 s by default: too short for a page in Chromium while the other
    // forks load both cores. A poll that is going to pass passes long before this.
    expect: { poll: { timeout: 10_000 } },
  },
});
