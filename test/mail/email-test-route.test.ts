import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { saveEmailSettings, type EmailSettings } from '../../src/mail/settings.js';
import { NOT_SMTP_BANNERS, PASSWORD, RECIPIENT, SECRETS, issueCertificate, scenarios, settingsFor, startBannerServer, trustedCaOrSkip, type Scenario } from './fixtures.js';

const ca = await trustedCaOrSkip('POST /api/settings/email/test');
// This file's own addresses for port 465 (the CLI tests use others).
const IP465 = { ok: '127.0.0.21', plain: '127.0.0.22' };
const all: Scenario[] = ca ? scenarios({ ca, implicitTls: await issueCertificate(ca, [IP465.ok]), ip465: IP465 }) : [];

let ctx: TestContext;
let admin: string;
// The route allows an admin 10 tests in 10 minutes; each scenario starts a new window.
beforeEach(() => {
  ctx?.clock.advanceSeconds(600);
});

beforeAll(async () => {
  ctx = await makeTestApp({ deps: { secrets: createMemorySecretStore(SECRETS) } });
  await addUser(ctx, { username: 'root', role: 'system-admin' });
  await addUser(ctx, { username: 'plain-user', role: 'user' });
  admin = await signIn(ctx, 'root');
});
afterAll(async () => {
  await ctx.close();
});

async function save(settings: EmailSettings | undefined): Promise<void> {
  if (settings === undefined) {
    await ctx.db.deleteFrom('settings').where('key', '=', 'email').execute();
    return;
  }
  const res = await ctx.app.inject({ method: 'PUT', url: '/api/settings/email', headers: { cookie: admin }, payload: { ...settings, currentPassword: STRONG_PASSWORD } });
  expect(res.statusCode, res.body).toBe(200);
}

const test = (to: unknown, cookie = admin) => ctx.app.inject({ method: 'POST', url: '/api/settings/email/test', headers: { cookie }, payload: { to } as object });

describe.skipIf(!ca)('POST /api/settings/email/test against real SMTP servers', () => {
  for (const scenario of all) {
    it(scenario.name, async () => {
      const running = await scenario.setup();
      try {
        await save(running.settings);
        const res = await test(RECIPIENT);
        const body = res.json();
        // The password never comes back, in any field, whatever happened.
        expect(res.body).not.toContain(PASSWORD);
        expect(res.body).not.toContain(Buffer.from(PASSWORD).toString('base64'));
        expect(ctx.logs.join('')).not.toContain(PASSWORD);
        expect(body.stages.map((s: { name: string }) => s.name)).toEqual(['settings', 'secrets', 'dns', 'connect', 'tls', 'auth', 'send']);
        if (scenario.expected.ok) {
          expect(res.statusCode, res.body).toBe(200);
          expect(body.ok).toBe(true);
          expect(body.stages.filter((s: { outcome: string }) => s.outcome === 'failed')).toEqual([]);
        } else {
          expect(res.statusCode, res.body).toBe(502);
          expect(body).toMatchObject({ ok: false, error: scenario.expected.error });
          expect(body.message).toMatch(scenario.expected.message);
          expect(body.hint).toMatch(scenario.expected.hint);
          const failed = body.stages.filter((s: { outcome: string }) => s.outcome === 'failed');
          expect(failed.map((s: { name: string }) => s.name)).toEqual([scenario.expected.stage]);
          // Every stage after the failed one did not run.
          const after = body.stages.slice(body.stages.findIndex((s: { outcome: string }) => s.outcome === 'failed') + 1);
          expect(after.every((s: { outcome: string }) => s.outcome === 'skipped')).toBe(true);
        }
        scenario.check?.(running.server);
      } finally {
        await running.close();
      }
    });
  }

  it('reports each stage with a detail and a duration, e.g. the TLS version and certificate', async () => {
    const running = await all[0]!.setup();
    try {
      await save(running.settings);
      const body = (await test(RECIPIENT)).json();
      const byName = Object.fromEntries(body.stages.map((s: { name: string }) => [s.name, s]));
      expect(byName.settings.detail).toBe(`127.0.0.1:${running.server!.port}, SSL enabled: STARTTLS required on port ${running.server!.port}`);
      expect(byName.secrets.detail).toBe('sender gatehouse-sender@example.com; password from secret "smtp-password"');
      expect(byName.dns.detail).toBe('127.0.0.1 is an IP address');
      expect(byName.connect.detail).toMatch(/^connected to 127\.0\.0\.1:\d+; greeting "220 /);
      expect(byName.tls.detail).toMatch(/^STARTTLS, TLSv1\.[23]; certificate for "localhost" issued by "Gatehouse Test CA"/);
      expect(byName.auth.detail).toBe('signed in as gatehouse-sender@example.com');
      expect(byName.send.detail).toMatch(/^accepted for admin@example\.com: "250 /);
      for (const s of body.stages) expect(Number.isInteger(s.ms) && s.ms >= 0).toBe(true);
    } finally {
      await running.close();
    }
  });

  it('records the test in the audit log with the outcome and a masked recipient', async () => {
    await save(undefined);
    await test('someone@example.com');
    const events = (await ctx.app.inject({ method: 'GET', url: '/api/audit?limit=1', headers: { cookie: admin } })).json().events;
    expect(events[0]).toMatchObject({ type: 'email_test_sent', outcome: 'failure', actor: { label: 'root' }, detail: { result: 'not_configured', to: 'so***@example.com' } });
  });
});

describe('POST /api/settings/email/test against a port that does not speak SMTP', () => {
  for (const [kind, { banner, telltales }] of Object.entries(NOT_SMTP_BANNERS)) {
    it(`answers 502 connect_failed "does not speak SMTP" to a ${kind} banner, with none of its bytes in the body, the audit or the logs`, async () => {
      const server = await startBannerServer(() => banner);
      try {
        await save(settingsFor(server));
        const res = await test(RECIPIENT);
        expect(res.statusCode).toBe(502);
        expect(res.json()).toMatchObject({ ok: false, error: 'connect_failed', message: `127.0.0.1:${server.port} does not speak SMTP.` });
        const audit = (await ctx.app.inject({ method: 'GET', url: '/api/audit?limit=1', headers: { cookie: admin } })).body;
        for (const telltale of telltales) {
          expect(res.body, telltale).not.toContain(telltale);
          expect(audit, telltale).not.toContain(telltale);
          expect(ctx.logs.join(''), telltale).not.toContain(telltale);
        }
      } finally {
        await server.close();
      }
    });
  }

  it('records the host and port it tested in the audit entry', async () => {
    const server = await startBannerServer(() => NOT_SMTP_BANNERS.ssh.banner);
    try {
      await save(settingsFor(server));
      await test('someone@example.com');
      const [event] = (await ctx.app.inject({ method: 'GET', url: '/api/audit?limit=1', headers: { cookie: admin } })).json().events;
      expect(event).toMatchObject({ type: 'email_test_sent', outcome: 'failure', detail: { result: 'connect_failed', to: 'so***@example.com', host: '127.0.0.1', port: server.port } });
    } finally {
      await server.close();
    }
  });
});

describe('POST /api/settings/email/test with settings that name a secret outside MAIL_SECRET_NAME_PATTERN', () => {
  it('does not read it and answers secret_not_found, naming MAIL_SECRET_NAME_PATTERN', async () => {
    await ctx.deps.secrets.set('billing-db-password', 'the billing database password');
    const server = await startBannerServer(() => '220 smtp.attacker.example ESMTP\r\n', { replies: (_n, line) => (/^EHLO/i.test(line) ? '250 smtp.attacker.example\r\n' : undefined) });
    try {
      // As saved before the rule existed: the route would refuse these names now.
      await saveEmailSettings(ctx.db, ctx.clock, settingsFor(server, { passwordSecretName: 'billing-db-password' }), null);
      const res = await test(RECIPIENT);
      expect(res.statusCode).toBe(502);
      expect(res.json()).toMatchObject({ error: 'secret_not_found', hint: expect.stringContaining('MAIL_SECRET_NAME_PATTERN') });
      expect(res.body).not.toContain('the billing database password');
      // Nothing connected to the host: the check stopped at the secrets.
      expect(server.connections).toBe(0);
    } finally {
      await server.close();
    }
  });
});

describe('POST /api/settings/email/test: who and what', () => {
  it('takes exactly one valid address in "to"', async () => {
    for (const to of ['', 'nope', 'a@example.com, b@example.com', 'Bob <bob@example.com>', 42, null, ['a@example.com']]) {
      const res = await test(to);
      expect(res.statusCode, JSON.stringify(to)).toBe(400);
      expect(res.json().error).toBe('invalid_request');
      expect(Object.keys(res.json().fields)).toEqual(['to']);
    }
    const extra = await ctx.app.inject({ method: 'POST', url: '/api/settings/email/test', headers: { cookie: admin }, payload: { to: RECIPIENT, host: 'evil.example' } });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().fields).toEqual({ host: 'Unknown field.' });
  });

  it('is for system admins only: 401 without a session, 403 for a user', async () => {
    const anonymous = await ctx.app.inject({ method: 'POST', url: '/api/settings/email/test', payload: { to: RECIPIENT } });
    expect(anonymous.statusCode).toBe(401);
    const user = await signIn(ctx, 'plain-user');
    const forbidden = await test(RECIPIENT, user);
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json().error).toBe('forbidden');
  });
});

describe('the test endpoint', () => {
  it('allows an admin ten tests in ten minutes, then answers 429', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      const res = await ctx.app.inject({ method: 'POST', url: '/api/settings/email/test', headers: { cookie: admin }, payload: { to: "limit@example.com" } });
      statuses.push(res.statusCode);
    }
    expect(statuses.slice(0, 10).every((s) => s !== 429)).toBe(true);
    expect(statuses[10]).toBe(429);
  });
});
