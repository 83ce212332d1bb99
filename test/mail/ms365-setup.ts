import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import type { EmailSettings } from '../../src/mail/settings.js';
import { findTrustedTestCa, type TestCa } from '../helpers/tls.js';
import { closedPort, watchNetwork, type NetworkWatch } from '../secrets/azure-fakes.js';
import { startManagedIdentityFakes, type FakeEntraApp, type FakeManagedIdentity, type ManagedIdentityFakesOptions, type Ms365Fakes, type SmtpFakeOptions } from './ms365-fakes.js';

/*
 * The setup the Microsoft 365 mail tests share (ms365-fakes*.test.ts, transports-diagnose*.test.ts,
 * transports-flow*.test.ts): the test CA, the environment of the managed-identity files, the
 * network watch, the Graph and smtp-oauth2 settings, and the reset email's link. The fakes
 * themselves, and starting them on the test CA's certificate, are in ms365-fakes.ts.
 */

export const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const TENANT_DOMAIN = 'contoso.onmicrosoft.com';
export const SENDER = 'gatehouse@contoso.example';
export const RECIPIENT = 'alice@example.org';

// ---------------------------------------------------------------------------------------------
// The test CA
// ---------------------------------------------------------------------------------------------

/**
 * The test CA made by test/global-setup.ts, whose server certificate the fakes serve; undefined
 * where it is not trusted (no openssl), for `describe.skipIf`, with a warning naming what is
 * skipped. On CI the warning is left out, or with `onCi: 'fail'` the file fails instead.
 */
export async function testCaOrSkip(skipping: string, onCi: 'skip' | 'fail' = 'skip'): Promise<TestCa | undefined> {
  const ca = await findTrustedTestCa();
  if (ca === undefined) {
    if (process.env.CI !== 'true') {
      console.warn(`\n!!! SKIPPING ${skipping}: the test CA is not trusted (see test/global-setup.ts; needs openssl)\n`);
    } else if (onCi === 'fail') {
      throw new Error('the test CA is not trusted: test/global-setup.ts must run (vitest.config.ts globalSetup)');
    }
  }
  return ca;
}

// ---------------------------------------------------------------------------------------------
// The managed-identity files: the fakes and the environment
// ---------------------------------------------------------------------------------------------

/**
 * startManagedIdentityFakes, then process.env pointing at them (isolateManagedIdentityEnvironment).
 * MSAL reads the managed-identity source from the environment once and keeps it, and its token
 * cache, in statics for the life of the process: call this in a file of its own, in beforeAll,
 * before the first credential is built. `close`, in afterAll, restores process.env and closes the fakes.
 */
export async function setUpManagedIdentity<S extends Record<string, SmtpFakeOptions>>(
  ca: TestCa,
  options: ManagedIdentityFakesOptions<S>,
): Promise<Ms365Fakes<S> & { identity: FakeManagedIdentity; authorityHost: string }> {
  const fakes = await startManagedIdentityFakes(ca, options);
  let environment: { authorityHost: string; restore(): void };
  try {
    environment = await isolateManagedIdentityEnvironment(fakes.identity);
  } catch (error) {
    await fakes.close();
    throw error;
  }
  const close = async (): Promise<void> => {
    environment.restore();
    await fakes.close();
  };
  return { ...fakes, authorityHost: environment.authorityHost, close };
}

/**
 * App Service's IDENTITY_ENDPOINT / IDENTITY_HEADER pointing at the fake, and nothing from the shell
 * (no real identity, no workload identity file, no proxy). AZURE_AUTHORITY_HOST is `authorityHost`,
 * a closed port on 127.0.0.1: anything falling back to an authority finds nothing there.
 */
async function isolateManagedIdentityEnvironment(identity: FakeManagedIdentity): Promise<{ authorityHost: string; restore(): void }> {
  const authorityHost = `https://127.0.0.1:${await closedPort()}`;
  const saved = { ...process.env };
  for (const name of Object.keys(process.env)) {
    if (/^(AZURE_|IDENTITY_|MSI_|IMDS_)/.test(name) || name === 'DEFAULT_IDENTITY_CLIENT_ID' || /^(https?|all|no)_proxy$/i.test(name)) delete process.env[name];
  }
  process.env.IDENTITY_ENDPOINT = identity.endpoint;
  process.env.IDENTITY_HEADER = identity.identityHeader;
  process.env.AZURE_AUTHORITY_HOST = authorityHost;
  const restore = (): void => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  };
  return { authorityHost, restore };
}

// ---------------------------------------------------------------------------------------------
// The network watch
// ---------------------------------------------------------------------------------------------

/**
 * Every HTTP(S) request and its connection went to 127.0.0.1 (`atLeast` requests were seen);
 * with `ipv4Only`, no connection either to the IPv4-mapped ::ffff:127.0.0.1.
 */
export function expectLoopbackOnly(network: NetworkWatch, atLeast = 0, { ipv4Only = false } = {}): void {
  const loopback = ipv4Only ? ['127.0.0.1'] : ['127.0.0.1', '::ffff:127.0.0.1'];
  expect(network.requests.length).toBeGreaterThanOrEqual(atLeast);
  expect(network.requests.filter((r) => r.host !== '127.0.0.1')).toEqual([]);
  expect(network.connections.filter((address) => !loopback.includes(address))).toEqual([]);
}

/**
 * The requests of the whole file: watched from a beforeAll to an afterAll. Call it before the file's
 * own hooks (inside its describe), so that the watch runs around them.
 */
export function watchNetworkOfFile(): NetworkWatch {
  let watch: NetworkWatch | undefined;
  beforeAll(() => {
    watch = watchNetwork();
  });
  afterAll(() => watch?.stop());
  return current(() => watch);
}

/** The requests of the running test, watched anew for each; after each, all must have gone to 127.0.0.1. */
export function watchNetworkOfEachTest(): NetworkWatch {
  let watch: NetworkWatch | undefined;
  beforeEach(() => {
    watch = watchNetwork();
  });
  afterEach(() => {
    watch!.stop();
    expectLoopbackOnly(watch!);
  });
  return current(() => watch);
}

function current(get: () => NetworkWatch | undefined): NetworkWatch {
  const watch = (): NetworkWatch => {
    const running = get();
    if (running === undefined) throw new Error('the network is watched only while the tests run');
    return running;
  };
  return {
    get requests() {
      return watch().requests;
    },
    get connections() {
      return watch().connections;
    },
    stop: () => watch().stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/** Microsoft Graph as the transport. */
export function graphTransport(fields: Partial<EmailSettings>): Partial<EmailSettings> {
  return { transport: 'graph', ...fields };
}

/** SMTP with XOAUTH2 to a fake on 127.0.0.1, with STARTTLS (the fake serves the test CA's certificate). */
export function smtpOauth2Transport(port: number, fields: Partial<EmailSettings>): Partial<EmailSettings> {
  return { transport: 'smtp-oauth2', host: '127.0.0.1', port, sslEnabled: true, tlsMode: 'starttls', ...fields };
}

/** An app registration that signs in with the client secret stored under `clientSecretName`. */
export function clientSecretApp(tenantId: string, clientId: string | null, clientSecretName: string): Partial<EmailSettings> {
  return { tenantId, clientId, entraCredential: 'client-secret', clientSecretName };
}

// ---------------------------------------------------------------------------------------------
// The fake tenant's apps
// ---------------------------------------------------------------------------------------------

/** The client ids of the app registrations the fake tenant of ms365-fakes.test.ts and transports-diagnose.test.ts knows. */
export interface TestApps {
  /** signs in with the secret */
  secretApp: string;
  /** signs in with the certificate */
  certApp: string;
  /** its secret has expired */
  expiredApp: string;
  /** signs in with the secret, but was given no mailbox */
  unpermittedApp: string;
}

/** The apps of TestApps, with this secret and this certificate. */
export function testApps(ids: TestApps, secret: string, certificatePem: string): Record<string, FakeEntraApp> {
  return {
    [ids.secretApp]: { secret },
    [ids.certApp]: { certificatePem },
    [ids.expiredApp]: { secret, expired: true },
    [ids.unpermittedApp]: { secret },
  };
}

// ---------------------------------------------------------------------------------------------
// The reset email
// ---------------------------------------------------------------------------------------------

/** The one link of a reset email: labelled "Reset Password", under PUBLIC_URL; its token. */
export function resetTokenOf(html: string | undefined, text: string | undefined, publicUrl: string): string {
  const prefix = `${publicUrl}/reset-password#token=`;
  const anchors = [...String(html).matchAll(/<a href="([^"]+)"[^>]*>([^<]*)<\/a>/g)].map((m) => ({ href: m[1]!.replace(/&amp;/g, '&'), label: m[2] }));
  expect(anchors).toHaveLength(1);
  expect(anchors[0]!.label).toBe('Reset Password');
  expect(anchors[0]!.href.startsWith(prefix)).toBe(true);
  expect(text).toContain(anchors[0]!.href);
  return anchors[0]!.href.slice(prefix.length);
}
