import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM strings and paths of a throwaway CA and certificates for 127.0.0.1 / localhost. */
export interface TestCa {
  dir: string;
  caCertPath: string;
  caCert: string;
  /** Signed by the test CA: trusted once caCertPath is in NODE_EXTRA_CA_CERTS. */
  serverKey: string;
  serverCert: string;
  /** Self-signed for the same names: never trusted, for "certificate rejected" tests. */
  untrustedKey: string;
  untrustedCert: string;
}

const FILES = {
  caKey: 'ca.key',
  caCert: 'ca.crt',
  serverKey: 'server.key',
  serverCsr: 'server.csr',
  serverCert: 'server.crt',
  serverExt: 'server.ext',
  untrustedKey: 'untrusted.key',
  untrustedCert: 'untrusted.crt',
} as const;

const SERVER_EXTENSIONS = [
  'subjectAltName = IP:127.0.0.1, DNS:localhost',
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature, keyEncipherment',
  'extendedKeyUsage = serverAuth',
  '',
].join('\n');

/** Where the CA made by test/global-setup.ts lives, for files running under it. */
export const TEST_CA_DIR_VARIABLE = 'GATEHOUSE_TEST_CA_DIR';

export async function hasOpenssl(): Promise<boolean> {
  try {
    await run('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

/** Makes a CA, a server certificate it signs and an untrusted self-signed one, in dir (which must exist). */
export async function makeTestCa(dir: string): Promise<TestCa> {
  const path = (name: keyof typeof FILES): string => join(dir, FILES[name]);
  const openssl = async (args: string[]): Promise<void> => {
    await run('openssl', args, { cwd: dir });
  };
  // P-256 keys: generated in milliseconds, unlike RSA, and accepted by every TLS stack we test.
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  await openssl([
    'req', '-x509', ...newKey, '-keyout', path('caKey'), '-out', path('caCert'), '-days', '7',
    '-subj', '/CN=Gatehouse Test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await writeFile(path('serverExt'), SERVER_EXTENSIONS);
  await openssl([
    'req', ...newKey, '-keyout', path('serverKey'), '-out', path('serverCsr'), '-subj', '/CN=localhost',
  ]);
  await openssl([
    'x509', '-req', '-in', path('serverCsr'), '-CA', path('caCert'), '-CAkey', path('caKey'),
    '-set_serial', `0x${Date.now().toString(16)}`, '-days', '7', '-extfile', path('serverExt'),
    '-out', path('serverCert'),
  ]);
  await openssl([
    'req', '-x509', ...newKey, '-keyout', path('untrustedKey'), '-out', path('untrustedCert'),
    '-days', '7', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return loadTestCa(dir);
}

/** Reads a CA made earlier by makeTestCa (e.g. by the global setup). */
export async function loadTestCa(dir: string): Promise<TestCa> {
  const read = (name: keyof typeof FILES): Promise<string> => readFile(join(dir, FILES[name]), 'utf8');
  return {
    dir,
    caCertPath: join(dir, FILES.caCert),
    caCert: await read('caCert'),
    serverKey: await read('serverKey'),
    serverCert: await read('serverCert'),
    untrustedKey: await read('untrustedKey'),
    untrustedCert: await read('untrustedCert'),
  };
}

/**
 * The CA made by test/global-setup.ts, or undefined when this process does not trust it
 * (global setup not wired, or openssl missing). NODE_EXTRA_CA_CERTS is read only when a process
 * starts, so trust cannot be added from inside a test.
 */
export async function findTrustedTestCa(): Promise<TestCa | undefined> {
  const dir = process.env[TEST_CA_DIR_VARIABLE];
  if (!dir || !existsSync(join(dir, FILES.caCert))) return undefined;
  const bundlePath = process.env.NODE_EXTRA_CA_CERTS;
  if (!bundlePath || !existsSync(bundlePath)) return undefined;
  const ca = await loadTestCa(dir);
  const bundle = await readFile(bundlePath, 'utf8');
  return bundle.includes(ca.caCert.trim()) ? ca : undefined;
}
