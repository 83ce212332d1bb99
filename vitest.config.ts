import { defineConfig } from 'vitest/config';

/**
 * Files that measure time or load the machine on purpose: they run last, one at a time, with
 * nothing else beside them (a timing test must not see another file's load as a signal, and the
 * cluster tests start several servers each).
 */
const ALONE = ['test/security/timing.test.ts', 'test/security/hash-flood.test.ts', 'test/cluster/**/*.test.ts', 'test/server-shutdown.test.ts'];

export default defineConfig({
  test: {
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
    projects: [
      {
        extends: true,
        // Most files wait on something (a browser, a server they started, SMTP, PostgreSQL): two at
        // a time keep both cores busy where one at a time left one idle.
        test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ALONE, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      { extends: true, test: { name: 'alone', include: ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } } },
    ],
  },
});
