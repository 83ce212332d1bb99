import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasOpenssl, makeTestCa, TEST_CA_DIR_VARIABLE } from './helpers/tls.js';

/**
 * Makes a throwaway test CA and trusts it in every test process.
 * Runs in the main vitest process before any fork starts; the forks copy process.env when
 * spawned, and Node reads NODE_EXTRA_CA_CERTS only at start-up, so this is the one place where
 * trust can be added. The bundle keeps whatever NODE_EXTRA_CA_CERTS already named.
 */
export default async function setup(): Promise<() => Promise<void>> {
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
