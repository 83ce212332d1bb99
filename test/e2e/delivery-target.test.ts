import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { startDevInbox, type DevInbox } from '../../src/mail/dev-inbox.js';
import { chooseMailer } from '../../src/mail/index.js';
import { cryptoRandom } from '../../src/random.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, describeInBrowser, launchBrowser, openPage, startWebApp, type RunningApp } from '../helpers/browser.js';
import { closedPort, PASSWORD, SENDER, startSmtp, type SmtpFixture } from '../mail/fixtures.js';

// Issue 10, the dev mailbox trap: saving settings used to turn the dev mailbox off without a
// word; with bogus values the reset email sat "Retrying" and only a restart with
// MAIL_DEV_INBOX=true got the dev mailbox back. Now where mail goes is said on Settings, Home and
// the Mail page and switched back in the page; "Send test email" tests the form's unsaved values;
// a save whose secret is missing is a warning.

describeInBrowser('where mail goes, in Chromium: the dev mailbox trap', () => {
  let app: RunningApp;
  let devInbox: DevInbox;
  let smtp: SmtpFixture;
  let browser: Browser;
  let chooser: ReturnType<typeof chooseMailer>;
  let deadPort: number;

  beforeAll(async () => {
    [devInbox, smtp, browser, deadPort] = await Promise.all([
      startDevInbox({ clock: systemClock, random: cryptoRandom }),
      // Plain SMTP on 127.0.0.1 (a password may go to this machine in clear) that takes SENDER / PASSWORD.
      startSmtp({ smtp: { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } }),
      launchBrowser(),
      closedPort(),
    ]);
    const secrets = createMemorySecretStore({ 'smtp-from': SENDER, 'smtp-password': PASSWORD });
    // The server's own choice of mailer, per message, as the outbox thread makes it.
    app = await startWebApp({ deps: { devInbox, secrets }, mailer: () => chooser.mailer() });
    chooser = chooseMailer({ db: app.ctx.db, secrets, config: app.ctx.deps.config, devInboxMailer: devInbox.mailer });
    await addUser(app.ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' });
    await addUser(app.ctx, { email: 'dora@example.com', name: 'Dora Dev' });
    await addUser(app.ctx, { email: 'eve@example.com', name: 'Eve Early' });
  });
  afterAll(async () => {
    chooser?.close();
    await browser?.close();
    await app?.close();
    await smtp?.close();
    await devInbox?.close();
  });

  async function expectAccessible(page: Page, title: string): Promise<void> {
    await expect.poll(() => page.title()).toBe(`${title} · Gatehouse`);
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  }

  async function expectNoSidewaysScroll(page: Page): Promise<void> {
    for (const [width, height] of [
      [1280, 800],
      [390, 844],
    ] as const) {
      await page.setViewportSize({ width, height });
      expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), `${width} px`).toBeLessThanOrEqual(0);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  }

  async function forgotPassword(page: Page, email: string): Promise<void> {
    expect((await page.request.post('/api/auth/forgot-password', { data: { email } })).status()).toBe(202);
    await app.ctx.outbox.drain();
  }

  it('saving bogus settings says mail now goes to your mail server and offers the dev mailbox back; the reset email then lands there without a restart', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto('/login');
    await page.getByLabel('Email or username').fill('root');
    await page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Welcome, Rita Root' }).waitFor();

    // Home says where mail goes.
    const homeLine = page.getByText(/^Deliver to: /);
    await homeLine.waitFor();
    expect(await homeLine.innerText()).toMatch(/^Deliver to: dev mailbox/);
    await expectAccessible(page, 'Home');
    await expectNoSidewaysScroll(page);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    const where = page.getByRole('region', { name: 'Where mail goes' });
    await where.waitFor();
    expect(await where.locator('.delivery-target').innerText()).toBe('Deliver to: dev mailbox');
    // Nothing saved yet: the server is not offered.
    expect(await where.getByRole('button').count()).toBe(0);
    await expectAccessible(page, 'Settings');
    await expectNoSidewaysScroll(page);

    const form = page.getByRole('form', { name: '“Forgot password” email' });
    const test = page.getByRole('form', { name: 'Send test email' });
    await form.getByLabel('Host', { exact: true }).fill('127.0.0.1');
    await form.getByLabel('Port', { exact: true }).fill(String(smtp.port));
    await form.getByLabel('SSL enabled', { exact: true }).uncheck();
    await form.getByLabel('Email secret name', { exact: true }).fill('smtp-from');
    await form.getByLabel('Password secret name (optional)', { exact: true }).fill('smtp-password');

    // "Send test email" on unsaved values: they move mail, so the current password is asked first, on the settings form.
    await test.getByText('The form has changes that are not saved: the test uses them.', { exact: false }).waitFor();
    await test.getByRole('button', { name: 'Send test email' }).click();
    await test.getByRole('alert').filter({ hasText: 'Correct the email settings marked above' }).waitFor();
    const currentPassword = form.getByLabel('Current password', { exact: true });
    expect(await currentPassword.getAttribute('aria-invalid')).toBe('true');
    await expectAccessible(page, 'Settings');

    await currentPassword.fill(STRONG_PASSWORD);
    await test.getByRole('button', { name: 'Send test email' }).click();
    await test.getByRole('status').filter({ hasText: 'Test email sent to root@example.com with the unsaved settings (nothing was saved)' }).waitFor();
    expect(smtp.messages.map((m) => m.rcpt)).toEqual([['root@example.com']]);
    expect((await (await page.request.get('/api/settings/email')).json()).configured).toBe(false);
    expect(await where.locator('.delivery-target').innerText()).toBe('Deliver to: dev mailbox');
    await expectAccessible(page, 'Settings');
    await expectNoSidewaysScroll(page);

    // Unsaved values that fail report their own failure: the port where nothing listens.
    await form.getByLabel('Port', { exact: true }).fill(String(deadPort));
    await test.getByRole('button', { name: 'Send test email' }).click();
    await test.getByRole('alert').filter({ hasText: 'The test email was not sent with the unsaved settings.' }).waitFor();
    expect((await (await page.request.get('/api/settings/email')).json()).configured).toBe(false);

    // Save the bogus settings, with a password secret that does not exist: a warning, not "Saved." in green.
    await form.getByLabel('Password secret name (optional)', { exact: true }).fill('smtp-missing');
    await currentPassword.fill(STRONG_PASSWORD);
    await form.getByRole('button', { name: 'Save' }).click();
    const saved = form.getByRole('status').filter({ hasText: 'Saved, but no email can go out yet.' });
    await saved.waitFor();
    expect(await saved.getAttribute('class')).toContain('alert-warning');
    expect(await saved.getAttribute('class')).not.toContain('alert-success');
    const savedText = await saved.innerText();
    expect(savedText).toContain('Password secret: not found in the secret store.');
    expect(savedText).toContain('gatehouse secrets set smtp-missing');
    expect(savedText).toContain('Mail now goes to your mail server, not the dev mailbox');
    expect(await form.locator('.alert-success').count()).toBe(0);

    // The page says where mail goes now, and offers the way back.
    expect(await where.locator('.delivery-target').innerText()).toBe('Deliver to: your mail server');
    const back = where.getByRole('button', { name: 'Deliver to dev mailbox' });
    await back.waitFor();
    await expectAccessible(page, 'Settings');
    await expectNoSidewaysScroll(page);

    // The reset email now sits retrying at the bogus server; the Mail page says where it was tried.
    await forgotPassword(page, 'dora@example.com');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Mail' }).click();
    const doraRow = page.getByRole('row').filter({ hasText: 'dora@example.com' });
    await doraRow.waitFor();
    expect(await doraRow.innerText()).toContain('Retrying');
    expect(await doraRow.innerText()).toContain('Tried: Mail server (SMTP)');
    expect(await page.getByText(/^Deliver to: /).innerText()).toMatch(/^Deliver to: your mail server/);
    expect(devInbox.list()).toEqual([]);
    await expectAccessible(page, 'Mail deliveries');
    await expectNoSidewaysScroll(page);

    // Switch back in the page: no restart.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await back.click();
    await where.getByRole('status').filter({ hasText: 'Mail now goes to dev mailbox.' }).waitFor();
    expect(await where.locator('.delivery-target').innerText()).toBe('Deliver to: dev mailbox');
    await where.getByRole('button', { name: 'Deliver to your mail server' }).waitFor();
    await expectAccessible(page, 'Settings');

    // A forgot-password email lands in the dev mailbox.
    await forgotPassword(page, 'eve@example.com');
    await expect.poll(() => devInbox.list().map((m) => m.to)).toContain('eve@example.com');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Mail' }).click();
    const eveRow = page.getByRole('row').filter({ hasText: 'eve@example.com' });
    await eveRow.waitFor();
    expect(await eveRow.innerText()).toContain('Sent');
    expect(await eveRow.innerText()).toContain('Dev mailbox');
    expect(await page.getByText(/^Deliver to: /).innerText()).toMatch(/^Deliver to: dev mailbox/);
    // Dora's retry goes to the dev mailbox too, on its next try.
    await new Promise((r) => setTimeout(r, 1100));
    await app.ctx.outbox.drain();
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(async () => doraRow.innerText()).toContain('Dev mailbox');
    expect(await doraRow.innerText()).toContain('Sent');
    expect(devInbox.list().map((m) => m.to).sort()).toEqual(['dora@example.com', 'eve@example.com']);
    await expectAccessible(page, 'Mail deliveries');
    await expectNoSidewaysScroll(page);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Home' }).click();
    await page.getByText(/^Deliver to: dev mailbox/).waitFor();
    await expectAccessible(page, 'Home');

    expect(record.foreignRequests()).toEqual([]);
    expect(record.cspViolations).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    await context.close();
  }, 90_000);
});
