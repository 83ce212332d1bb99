import type { ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { Db } from '../../src/db/index.js';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import { findEmailSettings, normalizeEmailSettings, saveEmailSettings, type EmailSettings } from '../../src/mail/settings.js';
import { createConfiguredMailer } from '../../src/mail/transport.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';
import { freePort } from '../helpers/cli.js';
import { bothDialects, postgresSuite, waitFor } from '../helpers/pg.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { findTrustedTestCa } from '../helpers/tls.js';

// The whole recovery flow over real HTTP, with a real SMTP server (STARTTLS + AUTH, the test CA)
// receiving the mail and the link followed from the parsed message, on SQLite and PostgreSQL.

const describeOnPostgres = await postgresSuite();
const ca = await findTrustedTestCa();
if (ca === undefined) {
  if (process.env.CI === 'true') throw new Error('the test CA is not trusted: test/global-setup.ts must run (vitest.config.ts globalSetup)');
  console.warn('\n!!!!!!!! SKIPPED flow tests: the test CA is missing (install openssl) !!!!!!!!\n');
}

const NEW_PASSWORD = 'a completely new passphrase';
const SECRETS = { 'smtp-sender': 'sender@example.com', 'smtp-password': 'smtp-pass' };

interface Harness {
  ctx: TestContext;
  url: string;
  smtp: TestSmtpServer;
  db: Db;
  settings: EmailSettings;
  close(): Promise<void>;
}

async function startHarness(makeDb: () => Promise<{ db: Db; drop(): Promise<void> }>): Promise<Harness> {
  const { db, drop } = await makeDb();
  const smtp = await startTestSmtpServer({ ca: ca!, credentials: { user: 'sender@example.com', pass: 'smtp-pass' } });
  const secrets = createMemorySecretStore(SECRETS);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const ctx = await makeTestApp({
    db,
    env: { PUBLIC_URL: url, LIMIT_RESET_PER_IP_PER_MINUTE: '0', LIMIT_FORGOT_PER_IP_PER_MINUTE: '0', LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0' },
    deps: { clock: systemClock, secrets, limiter: createMemoryRateLimiter(systemClock) },
    mailer: createConfiguredMailer(() => findEmailSettings(db), secrets),
  });
  const settings: EmailSettings = normalizeEmailSettings({ host: '127.0.0.1', port: smtp.port, emailSecretName: 'smtp-sender', passwordSecretName: 'smtp-password', sslEnabled: true });
  await saveEmailSettings(db, systemClock, settings, null);
  ctx.outbox.start();
  await ctx.app.listen({ host: '127.0.0.1', port });
  return {
    ctx,
    url,
    smtp,
    db,
    settings,
    async close() {
      await ctx.close();
      await smtp.close();
      await drop();
    },
  };
}

function tokenFrom(mail: ParsedMail, url: string): string {
  const prefix = `${url}/reset-password#token=`;
  const links = [...String(mail.html).matchAll(/href="([^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
  expect(links).toHaveLength(1);
  expect(links[0]!.startsWith(prefix)).toBe(true);
  const token = links[0]!.slice(prefix.length);
  expect(mail.text).toContain(links[0]);
  return token;
}

const dialects = bothDialects(describeOnPostgres, 'gatehouse-flow-');

for (const [dialect, makeDb, suite] of dialects) {
  (ca === undefined ? describe.skip : suite)(`password recovery end to end on ${dialect}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(makeDb);
    });
    afterAll(async () => {
      await h?.close();
    });

    const post = (p: string, body: unknown) =>
      fetch(`${h.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: h.url }, body: JSON.stringify(body) });

    it('delivers the reset email over STARTTLS + AUTH, and the link resets the password', async () => {
      await addUser(h.ctx, { email: 'Flow.User@example.com', name: 'Flow User' });
      const before = h.smtp.messages.length;
      const res = await post('/api/auth/forgot-password', { email: 'flow.user@example.com' });
      expect(res.status).toBe(202);
      const [mail] = (await h.smtp.waitForMessages(before + 1)).slice(before);
      // The address as stored, not as typed.
      expect(mail!.to && 'text' in mail!.to ? mail!.to.text : '').toBe('Flow.User@example.com');
      expect(mail!.from?.text).toContain('sender@example.com');
      expect(mail!.subject).toBe('Reset your password');
      const token = tokenFrom(mail!, h.url);

      const verify = await post('/api/auth/reset-password/verify', { token });
      expect(verify.status).toBe(200);
      expect((await post('/api/auth/reset-password', { token, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })).status).toBe(204);
      expect((await post('/api/auth/login', { login: 'flow.user@example.com', password: NEW_PASSWORD })).status).toBe(200);

      const [changed] = (await h.smtp.waitForMessages(before + 2)).slice(before + 1);
      expect(changed!.subject).toBe('Your password was changed');
      expect(String(changed!.html)).not.toContain('token=');
    });

    it('lets exactly one of 20 parallel resets with the same token succeed', async () => {
      await addUser(h.ctx, { email: 'race@example.com' });
      const before = h.smtp.messages.length;
      await post('/api/auth/forgot-password', { email: 'race@example.com' });
      const [mail] = (await h.smtp.waitForMessages(before + 1)).slice(before);
      const token = tokenFrom(mail!, h.url);
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const password = `parallel passphrase number ${i}`;
          return post('/api/auth/reset-password', { token, password, confirmPassword: password }).then(async (r) => ({ status: r.status, body: await r.text(), password }));
        }),
      );
      const ms = performance.now() - started;
      const winners = results.filter((r) => r.status === 204);
      expect(winners).toHaveLength(1);
      expect(results.filter((r) => r.status === 400).every((r) => JSON.parse(r.body).error === 'invalid_or_expired_token')).toBe(true);
      expect((await post('/api/auth/login', { login: 'race@example.com', password: winners[0]!.password })).status).toBe(200);
      console.log(`[${dialect}] 20 parallel resets with one token: 1 succeeded, 19 refused, ${ms.toFixed(0)} ms`);
    });

    it('delivers every email queued during an SMTP outage exactly once, and the database copy taken meanwhile allows no reset', async () => {
      const emails = ['out1@example.com', 'out2@example.com', 'out3@example.com', 'out4@example.com', 'out5@example.com'];
      for (const email of emails) await addUser(h.ctx, { email });
      const port = h.smtp.port;
      await h.smtp.close();
      const downAt = performance.now();
      for (const email of emails) expect((await post('/api/auth/forgot-password', { email })).status).toBe(202);
      await waitFor('every delivery to fail once', async () => {
        const rows = await h.db.selectFrom('mail_outbox').select(['status']).where('to_address', 'in', emails).execute();
        return rows.length === emails.length && rows.every((r) => r.status === 'retrying') ? rows : undefined;
      });
      const copy = {
        tokens: await h.db.selectFrom('reset_tokens').selectAll().execute(),
        outbox: await h.db.selectFrom('mail_outbox').selectAll().where('to_address', 'in', emails).execute(),
      };
      expect(copy.tokens).toHaveLength(0);
      expect(copy.outbox.every((r) => r.last_error !== null && r.attempts >= 1)).toBe(true);
      expect(JSON.stringify(copy)).not.toMatch(/[A-Za-z0-9_-]{43}/);

      h.smtp = await startTestSmtpServer({ ca: ca!, port, credentials: { user: 'sender@example.com', pass: 'smtp-pass' } });
      const upAt = performance.now();
      await h.smtp.waitForMessages(emails.length, 30_000);
      const deliveredAt = performance.now();
      await new Promise((r) => setTimeout(r, 1500));
      const recipients = h.smtp.messages.map((m) => (m.to && 'text' in m.to ? m.to.text : ''));
      expect(recipients.sort()).toEqual([...emails].sort());
      const rows = await h.db.selectFrom('mail_outbox').select(['status']).where('to_address', 'in', emails).execute();
      expect(rows.every((r) => r.status === 'sent')).toBe(true);
      for (const mail of h.smtp.messages) expect((await post('/api/auth/reset-password/verify', { token: tokenFrom(mail, h.url) })).status).toBe(200);
      console.log(
        `[${dialect}] SMTP outage: ${emails.length} emails queued while down for ${((upAt - downAt) / 1000).toFixed(1)} s, all delivered once ${((deliveredAt - upAt) / 1000).toFixed(1)} s after it came back`,
      );
    });

    it('never sends the credentials to a server that does not offer STARTTLS, and refuses an untrusted certificate', async () => {
      await addUser(h.ctx, { email: 'tls@example.com' });
      const noStarttls = await startTestSmtpServer({ ca: ca!, smtp: { disabledCommands: ['STARTTLS'] } });
      const untrusted = await startTestSmtpServer({ ca: { ...ca!, serverKey: ca!.untrustedKey, serverCert: ca!.untrustedCert } });
      try {
        for (const [server, pattern] of [
          [noStarttls, /STARTTLS/i],
          [untrusted, /certificate/i],
        ] as const) {
          await saveEmailSettings(h.db, systemClock, { ...h.settings, port: server.port }, null);
          await h.db.deleteFrom('mail_outbox').execute();
          await post('/api/auth/forgot-password', { email: 'tls@example.com' });
          const row = await waitFor('the delivery to fail', async () => {
            const r = await h.db.selectFrom('mail_outbox').selectAll().where('to_address', '=', 'tls@example.com').executeTakeFirst();
            return r?.status === 'retrying' ? r : undefined;
          });
          expect(row.last_error).toMatch(pattern);
          expect(server.messages).toHaveLength(0);
          expect(server.authAttempts).toBe(0);
        }
      } finally {
        await saveEmailSettings(h.db, systemClock, h.settings, null);
        await h.db.deleteFrom('mail_outbox').execute();
        await noStarttls.close();
        await untrusted.close();
      }
    });
  });
}
