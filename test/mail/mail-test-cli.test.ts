import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli, tempDataDir } from '../helpers/cli.js';
import { FakeClock } from '../../src/clock.js';
import { createDb, migrateToLatest } from '../../src/db/index.js';
import { normalizeEmailSettings, saveEmailSettings, type EmailSettings } from '../../src/mail/settings.js';
import { NOT_SMTP_BANNERS, PASSWORD, RECIPIENT, SECRETS, issueCertificate, scenarios, settingsFor, startBannerServer, trustedCaOrSkip, type Scenario } from './fixtures.js';

const ca = await trustedCaOrSkip('gatehouse mail test');
// This file's own addresses for port 465 (the route tests use others).
const IP465 = { ok: '127.0.0.23', plain: '127.0.0.24' };
// Each run starts a Node process (~0.6 s): the provider-reply variants the route tests cover
// through the same code are left out here.
const LEFT_TO_THE_ROUTE_TESTS = [/5\.7\.139/, /5\.7\.57/, /5\.7\.3 /, /after DATA/, /missing secret is named/, /loopback relay/];
const all: Scenario[] = ca
  ? scenarios({ ca, implicitTls: await issueCertificate(ca, [IP465.ok]), ip465: IP465 }).filter((s) => !LEFT_TO_THE_ROUTE_TESTS.some((re) => re.test(s.name)))
  : [];
const STAGE_LINE = /^[✓✗–] (settings|secrets|dns|connect|tls|auth|send) {2}\S/;

const dirs: string[] = [];
let template: string;
beforeAll(async () => {
  assertBuilt();
  template = tempDataDir();
  dirs.push(template);
  // The secrets go in the way an operator puts them there.
  for (const [name, value] of Object.entries(SECRETS)) {
    const res = await runCli(['secrets', 'set', name], { env: { DATA_DIR: template }, input: `${value}\n` });
    expect(res.code, res.stderr).toBe(0);
  }
});
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** A DATA_DIR with the template's secret store and, when given, saved email settings (there is no settings command). */
async function dataDirWith(settings: Partial<EmailSettings> | undefined): Promise<string> {
  const dir = tempDataDir();
  dirs.push(dir);
  fs.cpSync(template, dir, { recursive: true });
  if (settings !== undefined) {
    const db = createDb({ kind: 'sqlite', file: path.join(dir, 'gatehouse.sqlite') });
    await migrateToLatest(db);
    await saveEmailSettings(db, new FakeClock(), normalizeEmailSettings(settings), null);
    await db.destroy();
  }
  return dir;
}

const mailTest = (dir: string, args = ['--to', RECIPIENT]) =>
  runCli(['mail', 'test', ...args], { env: { DATA_DIR: dir, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '' } });

describe.skipIf(!ca)('gatehouse mail test against real SMTP servers', { concurrent: true }, () => {
  for (const scenario of all) {
    it(scenario.name, async () => {
      const running = await scenario.setup();
      try {
        const res = await mailTest(await dataDirWith(running.settings));
        const lines = res.stdout.trimEnd().split('\n');
        expect(lines.map((l) => STAGE_LINE.exec(l)?.[1]), res.stdout).toEqual(['settings', 'secrets', 'dns', 'connect', 'tls', 'auth', 'send']);
        expect(res.stdout + res.stderr).not.toContain(PASSWORD);
        if (scenario.expected.ok) {
          expect(res.stderr).toBe('');
          expect(res.code).toBe(0);
          expect(lines.at(-1)).toMatch(/^✓ send {2}accepted for admin@example\.com: "250 /);
        } else {
          expect(res.code, res.stderr).toBe(1);
          const m = /^gatehouse: ([a-z_]+): (.+?) — (.+)\n$/.exec(res.stderr);
          expect(m, res.stderr).not.toBeNull();
          expect(m![1]).toBe(scenario.expected.error);
          expect(m![2]).toMatch(scenario.expected.message);
          expect(m![3]).toMatch(scenario.expected.hint);
          expect(lines.find((l) => l.startsWith('✗ '))).toMatch(new RegExp(`^✗ ${scenario.expected.stage} {2}`));
        }
        scenario.check?.(running.server);
      } finally {
        await running.close();
      }
    });
  }

  it('tells how to add a missing secret to the local store', async () => {
    const res = await mailTest(await dataDirWith({ host: '127.0.0.1', port: 587, emailSecretName: 'smtp-from', passwordSecretName: 'smtp-pass-typo', sslEnabled: true }));
    expect(res.code).toBe(1);
    expect(res.stderr).toBe(
      'gatehouse: secret_not_found: The secret "smtp-pass-typo" (the password) was not found in the local secret store. — Add it with "gatehouse secrets set smtp-pass-typo" (the value is read from stdin), or correct the name on the Settings page. A secret added just now is seen by a running server within SECRETS_CACHE_SECONDS (30 s by default).\n',
    );
  });
});

describe('gatehouse mail test: what it reads and what it shows', () => {
  it('never reads a secret outside MAIL_SECRET_NAME_PATTERN and says which variable decides', async () => {
    const dir = await dataDirWith({ host: '127.0.0.1', port: 587, emailSecretName: 'smtp-from', passwordSecretName: 'billing-db-password', sslEnabled: true });
    const res = await mailTest(dir);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^gatehouse: secret_not_found: The secret "billing-db-password" was not read: .+ — .*MAIL_SECRET_NAME_PATTERN \(\^\(smtp\|mail\)-\)/);
  });

  it('prints none of the banner of a port that does not speak SMTP', async () => {
    const server = await startBannerServer(() => NOT_SMTP_BANNERS.ssh.banner);
    try {
      const res = await mailTest(await dataDirWith(settingsFor(server)));
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/^gatehouse: connect_failed: 127\.0\.0\.1:\d+ does not speak SMTP\. — /);
      for (const telltale of NOT_SMTP_BANNERS.ssh.telltales) expect(res.stdout + res.stderr).not.toContain(telltale);
    } finally {
      await server.close();
    }
  });
});

describe('gatehouse mail test: arguments', () => {
  it('is listed in --help', async () => {
    const res = await runCli(['--help'], { env: { DATA_DIR: template } });
    expect(res.stdout).toContain('mail test --to E');
  });

  it('exits 2 with one line on stderr for bad arguments, before touching anything', async () => {
    const dir = tempDataDir();
    dirs.push(dir);
    const bad = [[], ['--to', 'a@example.com, b@example.com'], ['--to', RECIPIENT, 'extra']];
    const [missing, list, extra, wrongSub] = await Promise.all([...bad.map((args) => mailTest(dir, args)), runCli(['mail', 'send', '--to', RECIPIENT], { env: { DATA_DIR: dir } })]);
    expect(missing).toEqual({ code: 2, stdout: '', stderr: 'gatehouse: --to is required\n' });
    expect(list).toEqual({ code: 2, stdout: '', stderr: 'gatehouse: --to "a@example.com, b@example.com" is not one valid address\n' });
    expect(extra!.code).toBe(2);
    expect(extra!.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrongSub).toEqual({ code: 2, stdout: '', stderr: 'gatehouse: usage: gatehouse mail test --to E\n' });
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
