import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, describeInBrowser, launchBrowser, openPage, pathOf, startWebApp, type RunningApp } from '../helpers/browser.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { findTrustedTestCa } from '../helpers/tls.js';

const SENDER = 'sender@example.com';
// A prefix of its own secret's name ("smtp-password"), on purpose: the test's output blanks the
// password only where the SMTP server echoes it, so the name must still read in full.
const SMTP_PASSWORD = 'smtp-pass';

const ca = await findTrustedTestCa();
if (ca === undefined) {
  const reason = 'the test CA is not trusted in this process (install openssl; test/global-setup.ts must run)';
  if (process.env.CI === 'true') throw new Error(`Settings e2e: ${reason}`);
  console.warn(`\n!!! SKIPPING the Settings e2e suite: ${reason}\n`);
}
const describeWithSmtp = ca === undefined ? describe.skip : describeInBrowser;

describeWithSmtp('the Settings page in Chromium, against a real SMTP server with STARTTLS', () => {
  let app: RunningApp;
  let browser: Browser;
  let smtp: TestSmtpServer;
  let secrets: SecretStore;

  beforeAll(async () => {
    secrets = createMemorySecretStore({ 'smtp-from': SENDER, 'smtp-password': SMTP_PASSWORD });
    [smtp, app, browser] = await Promise.all([
      startTestSmtpServer({ ca: ca!, credentials: { user: SENDER, pass: SMTP_PASSWORD } }),
      startWebApp({ deps: { secrets } }),
      launchBrowser(),
    ]);
    await addUser(app.ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await smtp?.close();
  });

  async function expectAccessible(page: Page): Promise<void> {
    await expect.poll(() => page.title()).toBe('Settings · Gatehouse');
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  }

  /** The field's accessible description holds the text (hint and error are linked with aria-describedby). */
  async function expectDescribedBy(field: Locator, text: string): Promise<void> {
    await expect.poll(async () => field.evaluate((el) => (el.getAttribute('aria-describedby') ?? '').split(' ').map((id) => document.getElementById(id)?.textContent ?? '').join(' '))).toContain(text);
  }

  /** The outcome word of each step of the email test, by step name. */
  async function stages(page: Page): Promise<string[]> {
    const steps = page.getByRole('region', { name: 'Steps' }).getByRole('listitem');
    return (await steps.allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim());
  }

  it('saves the "Forgot password" email form, reports that both secrets resolve, and sends a test email; a wrong password shows what went wrong and what to do', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    await page.goto('/settings');
    await page.getByLabel('Email or username').fill('root');
    await page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Settings', level: 1 }).waitFor();
    expect(pathOf(page)).toBe('/settings');
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allInnerTexts()).toEqual(['Home', 'Users', 'Settings', 'Mail', 'Audit']);
    expect(await nav.getByRole('link', { name: 'Settings' }).getAttribute('aria-current')).toBe('page');

    const form = page.getByRole('form', { name: '“Forgot password” email' });
    const host = form.getByLabel('Host', { exact: true });
    const port = form.getByLabel('Port', { exact: true });
    const emailSecret = form.getByLabel('Email secret name', { exact: true });
    const passwordSecret = form.getByLabel('Password secret name (optional)', { exact: true });
    const ssl = form.getByLabel('SSL enabled', { exact: true });
    const currentPassword = form.getByLabel('Current password', { exact: true });
    const save = form.getByRole('button', { name: 'Save' });

    // The documented defaults, before any save.
    await host.waitFor();
    expect(await host.inputValue()).toBe('');
    expect(await port.inputValue()).toBe('587');
    expect(await emailSecret.inputValue()).toBe('');
    expect(await passwordSecret.inputValue()).toBe('');
    expect(await ssl.isChecked()).toBe(true);
    await form.getByText('Not saved yet.').waitFor();
    await form.getByText(/^Port 465 uses implicit TLS; any other port, such as 587, requires STARTTLS\./).waitFor();
    await form.getByText('gatehouse secrets set NAME').waitFor();
    // The first save decides where mail goes: it asks for the admin's own password.
    expect(await currentPassword.getAttribute('autocomplete')).toBe('current-password');
    await expectAccessible(page);

    // Empty fields are caught in the page.
    await port.fill('');
    await save.click();
    await form.getByText('Enter the SMTP host, such as smtp.gmail.com.').waitFor();
    expect(await host.getAttribute('aria-invalid')).toBe('true');
    expect(await port.getAttribute('aria-invalid')).toBe('true');
    expect(await emailSecret.getAttribute('aria-invalid')).toBe('true');
    expect(await currentPassword.getAttribute('aria-invalid')).toBe('true');
    await expectDescribedBy(currentPassword, 'Enter your current password to change where mail is sent.');
    await expectAccessible(page);

    // What only the server knows comes back under `fields` and lands on the field.
    await host.fill('smtp_example.com');
    await port.fill('587');
    await emailSecret.fill('smtp-from');
    await currentPassword.fill(STRONG_PASSWORD);
    await save.click();
    await form.getByText('Enter a host name such as smtp.gmail.com (no scheme, no port).').waitFor();
    expect(await host.getAttribute('aria-invalid')).toBe('true');
    expect(await port.getAttribute('aria-invalid')).toBeNull();
    await form.getByRole('alert').filter({ hasText: 'Correct the fields marked below.' }).waitFor();
    await expectAccessible(page);

    // The one-line explanation follows the checkbox.
    await ssl.uncheck();
    await form.getByText(/^Off: plain SMTP, switching to STARTTLS when the server offers it\./).waitFor();
    await ssl.check();

    // A secret outside MAIL_SECRET_NAME_PATTERN is refused on its field, naming the pattern.
    await host.fill('127.0.0.1');
    await port.fill(String(smtp.port));
    await passwordSecret.fill('billing-db-password');
    await save.click();
    await expectDescribedBy(passwordSecret, 'Email settings can only use secrets whose names match ^(smtp|mail)- (MAIL_SECRET_NAME_PATTERN).');
    expect(await passwordSecret.getAttribute('aria-invalid')).toBe('true');

    // A wrong current password is said on its field, and nothing is saved.
    await passwordSecret.fill('smtp-password');
    await currentPassword.fill('not my password at all');
    await save.click();
    await expectDescribedBy(currentPassword, 'The current password is not correct.');
    expect(await currentPassword.getAttribute('aria-invalid')).toBe('true');
    expect((await (await page.request.get('/api/settings/email')).json()).configured).toBe(false);
    await expectAccessible(page);

    // Valid settings: the local SMTP server, STARTTLS required (587-style), secrets in the store.
    await currentPassword.fill(STRONG_PASSWORD);
    await save.click();
    await form
      .getByRole('status')
      .filter({ hasText: 'Saved. Email secret: found in the secret store. Password secret: found in the secret store.' })
      .waitFor();
    expect(await form.getByText('Found in the secret store', { exact: true }).count()).toBe(2);
    expect(await form.getByText('Not saved yet.').count()).toBe(0);
    // Saved: nothing changes where mail goes now, so no password is asked for.
    expect(await currentPassword.count()).toBe(0);

    // Saved for real: a fresh load shows the same.
    await page.reload();
    await host.waitFor();
    expect(await host.inputValue()).toBe('127.0.0.1');
    expect(await port.inputValue()).toBe(String(smtp.port));
    expect(await passwordSecret.inputValue()).toBe('smtp-password');
    expect(await ssl.isChecked()).toBe(true);
    await form.getByText('Found in the secret store', { exact: true }).nth(1).waitFor();

    // Send test email: every step passes and the SMTP server has the message.
    const test = page.getByRole('form', { name: 'Send test email' });
    const to = test.getByLabel('To address', { exact: true });
    expect(await to.inputValue()).toBe('root@example.com');
    await to.fill('inbox@example.com');
    await test.getByRole('button', { name: 'Send test email' }).click();
    await test.getByRole('status').filter({ hasText: 'Test email sent to inbox@example.com' }).waitFor();
    expect(await stages(page)).toEqual([
      expect.stringMatching(/^✓ Settings passed 127\.0\.0\.1:\d+, SSL enabled: STARTTLS required/),
      expect.stringMatching(/^✓ Secrets passed sender sender@example\.com; password from secret "smtp-password"$/),
      expect.stringMatching(/^✓ DNS lookup passed /),
      expect.stringMatching(/^✓ Connection passed /),
      expect.stringMatching(/^✓ TLS passed STARTTLS, TLSv1\.[23]/),
      expect.stringMatching(/^✓ Sign-in \(AUTH\) passed signed in as sender@example\.com$/),
      expect.stringMatching(/^✓ Sending passed /),
    ]);
    const [received] = await smtp.waitForMessages(1);
    expect(received!.to).toMatchObject({ text: 'inbox@example.com' });
    expect(received!.from).toMatchObject({ text: expect.stringContaining(SENDER) });
    expect(await test.getByRole('alert').innerText()).toBe('');
    await expectAccessible(page);

    // Break it: the password secret now holds the wrong value.
    await secrets.set('smtp-password', 'not the right password');
    await test.getByRole('button', { name: 'Send test email' }).click();
    const alert = test.getByRole('alert').filter({ hasText: 'The test email was not sent.' });
    await alert.waitFor();
    const alertText = await alert.innerText();
    expect(alertText).toMatch(/What to do: \S+/);
    expect(alertText).not.toContain('not the right password');
    expect(await test.getByRole('status').innerText()).toBe('');
    const broken = await stages(page);
    expect(broken[5]).toMatch(/^✗ Sign-in \(AUTH\) failed /);
    expect(broken[6]).toMatch(/^– Sending skipped /);
    expect(smtp.messages).toHaveLength(1);
    await expectAccessible(page);

    // A secret that does not exist is reported as such after saving (never a value).
    await passwordSecret.fill('smtp-no-such-secret');
    await currentPassword.fill(STRONG_PASSWORD);
    await save.click();
    const warning = form.getByRole('status').filter({ hasText: 'Password secret: not found in the secret store.' });
    await warning.waitFor();
    // Settings that cannot send are saved with a warning and what to do, never "Saved." in green.
    expect(await warning.getAttribute('class')).toContain('alert-warning');
    expect(await warning.innerText()).toMatch(/^Saved, but no email can go out yet\./);
    expect(await warning.innerText()).toContain('gatehouse secrets set smtp-no-such-secret');
    await form.getByText('Not found in the secret store', { exact: true }).waitFor();
    expect(await form.getByText('Found in the secret store', { exact: true }).count()).toBe(1);
    await expectAccessible(page);

    // Leaving the password secret empty means a relay without AUTH: saved as null.
    await passwordSecret.fill('');
    await currentPassword.fill(STRONG_PASSWORD);
    await save.click();
    await form.getByRole('status').filter({ hasText: /^Saved\. Email secret: found in the secret store\.$/ }).waitFor();
    const saved = await page.request.get('/api/settings/email');
    expect(await saved.json()).toMatchObject({ passwordSecretName: null, secretsResolve: { email: true, password: null } });

    // SSL alone needs no password. But when the server's settings changed meanwhile (another
    // admin), the page's save would move the mail: the server asks, and the field appears.
    expect(await currentPassword.count()).toBe(0);
    const moved = await page.request.put('/api/settings/email', {
      data: { host: 'localhost', port: smtp.port, emailSecretName: 'smtp-from', passwordSecretName: null, sslEnabled: true, currentPassword: STRONG_PASSWORD },
    });
    expect(moved.status()).toBe(200);
    await ssl.uncheck();
    await save.click();
    await expectDescribedBy(currentPassword, 'Enter your current password to change where mail is sent.');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('autocomplete'))).toBe('current-password');
    await expectAccessible(page);
    await currentPassword.fill(STRONG_PASSWORD);
    await save.click();
    await form.getByRole('status').filter({ hasText: /^Saved\./ }).waitFor();
    expect(await (await page.request.get('/api/settings/email')).json()).toMatchObject({ host: '127.0.0.1', sslEnabled: false });
    expect(await currentPassword.count()).toBe(0);

    expect(record.foreignRequests()).toEqual([]);
    expect(record.cspViolations).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    expect(record.requests.some((url) => /\/assets\/settings-[\w-]+\.js$/.test(url))).toBe(true);
    await context.close();
  });

  it('fits a phone screen without sideways scrolling, test steps included', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    expect((await page.request.post('/api/auth/login', { data: { login: 'root', password: STRONG_PASSWORD } })).status()).toBe(200);
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto('/settings');
    const test = page.getByRole('form', { name: 'Send test email' });
    await test.getByRole('button', { name: 'Send test email' }).click();
    await page.getByRole('region', { name: 'Steps' }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await context.close();
  });
});
