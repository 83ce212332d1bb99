import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasOpenssl, makeTestCa, TEST_CA_DIR_VARIABLE } from './helpers/tls.js';

/** Names the file test/support/network-guard.mjs appends refused connections and lookups to. */
export const NETWORK_GUARD_LOG_VARIABLE = 'GATEHOUSE_NETWORK_GUARD_LOG';

/**
 * Runs in the main vitest process before any fork starts; the forks copy process.env when
 * spawned, so this is where every test process learns what it must share:
 * - the network guard's log file (the guard itself is loaded into the forks by vitest.config.ts's
 *   execArgv and carries itself into child processes and worker threads; see its header). The
 *   teardown fails the run when any process logged a violation: an attempt to resolve a name or
 *   connect to an address that is not loopback.
 * - a throwaway test CA, trusted in every test process: Node reads NODE_EXTRA_CA_CERTS only at
 *   start-up. The bundle keeps whatever NODE_EXTRA_CA_CERTS already named.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const teardownGuard = await setupNetworkGuardLog();
  let teardownCa: () => Promise<void> = async () => undefined;
  try {
    teardownCa = await setupTestCa();
  } catch (err) {
    await teardownGuard();
    throw err;
  }
  return async () => {
    try {
      await teardownCa();
    } finally {
      await teardownGuard();
    }
  };
}

async function setupNetworkGuardLog(): Promise<() => Promise<void>> {
  const previous = process.env[NETWORK_GUARD_LOG_VARIABLE];
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-network-guard-'));
  const logPath = join(dir, 'violations.log');
  await writeFile(logPath, '');
  process.env[NETWORK_GUARD_LOG_VARIABLE] = logPath;
  return async () => {
    restore(NETWORK_GUARD_LOG_VARIABLE, previous);
    const log = existsSync(logPath) ? await readFile(logPath, 'utf8') : '';
    await rm(dir, { recursive: true, force: true });
    const violations = networkGuardViolations(log);
    if (violations.length > 0) {
      // vitest 4 prints an error thrown by a global teardown ("error during close") but exits 0
      process.exitCode = 1;
      throw new Error(
        `network-guard: ${violations.length} attempt(s) to reach a host that is not loopback (tests talk to 127.0.0.1 only; see test/support/network-guard.mjs):\n` +
          violations.map((line) => `  ${line}`).join('\n'),
      );
    }
  };
}

/** The log's lines that are violations (not marked EXPECTED by the guard's own tests). */
export function networkGuardViolations(log: string): string[] {
  return log
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/ EXPECTED /.test(line));
}

async function setupTestCa(): Promise<() => Promise<void>> {
  const previousBundle = process.env.NODE_EXTRA_CA_CERTS;
  const previousDir = process.env[TEST_CA_DIR_VARIABLE];
  if (!(await hasOpenssl())) {
    console.warn('\n!!! openssl not found: TLS tests (Azure Key Vault, SMTP TLS) will be skipped. Install openssl.\n');
    return async () => undefined;
  }
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-test-ca-'));
  const ca = await makeTestCa(dir);
  const inherited =
    previousBundle && existsSync(previousBundle) ? await readFile(previousBundle, 'utf8') : '';
  const bundlePath = join(dir, 'extra-ca-bundle.pem');
  await writeFile(bundlePath, `${inherited.trimEnd()}\n${ca.caCert}`);
  process.env.NODE_EXTRA_CA_CERTS = bundlePath;
  process.env[TEST_CA_DIR_VARIABLE] = dir;

  return async () => {
    restore('NODE_EXTRA_CA_CERTS', previousBundle);
    restore(TEST_CA_DIR_VARIABLE, previousDir);
    await rm(dir, { recursive: true, force: true });
  };
}

function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
