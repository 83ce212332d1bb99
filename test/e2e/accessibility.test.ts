import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, becomesFocused, describeInBrowser, launchBrowser, openPage, startWebApp, type RunningApp } from '../helpers/browser.js';

// Every page in every state, once with the system in light mode and once in dark mode (the colours differ).
for (const scheme of ['light', 'dark'] as const) {
// Long walks through many pages on a machine that may be busy: a generous time per test.
describeInBrowser(`accessibility (axe-core, WCAG 2.1 A and AA) in Chromium, ${scheme} mode`, { timeout: 120_000 }, () => {
  let app: RunningApp;
  let browser: Browser;

  beforeAll(async () => {
    [app, browser] = await Promise.all([startWebApp(), launchBrowser()]);
    await addUser(app.ctx, { username: 'root', name: 'Rita Root', role: 'system-admin' });
    await addUser(app.ctx, { email: 'uma@example.com', name: 'Uma User' });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** A fresh page with the system's colour scheme emulated. */
  async function openSchemed(): ReturnType<typeof openPage> {
    const opened = await openPage(browser, app.baseUrl);
    await opened.page.emulateMedia({ colorScheme: scheme });
    return opened;
  }

  async function expectAccessible(page: Page, title: string): Promise<void> {
    // The scheme really applies: the page's background is the light or the dark one.
    expect(await page.evaluate(() => getComputedStyle(document.body).backgroundColor)).toBe(scheme === 'light' ? 'rgb(243, 245, 247)' : 'rgb(13, 17, 23)');
    // The title follows the render (an effect): wait for it rather than race it.
    await expect.poll(() => page.title(), { timeout: 5000 }).toBe(`${title} · Gatehouse`);
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(await page.getByRole('banner').count()).toBe(1);
    expect(await page.getByRole('main').count()).toBe(1);
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  }

  async function signedIn(login: string): Promise<{ context: BrowserContext; page: Page }> {
    const { context, page } = await openSchemed();
    const res = await page.request.post('/api/auth/login', { data: { login, password: STRONG_PASSWORD } });
    expect(res.status()).toBe(200);
    return { context, page };
  }

  it('catches a violation when there is one (the checks below can fail)', async () => {
    const { context, page } = await openSchemed();
    await page.goto('/login');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.evaluate(() => document.getElementById('main')!.append(Object.assign(document.createElement('input'), { type: 'text' })));
    expect((await axeViolations(page)).map((v) => v.id)).toContain('label');
    await context.close();
  });

  it('finds no violations on the signed-out pages, including their error states', async () => {
    const { context, page } = await openSchemed();

    await page.goto('/login');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await expectAccessible(page, 'Sign in');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Enter your email or username.').waitFor();
    await expectAccessible(page, 'Sign in');
    await page.getByLabel('Email or username').fill('nobody');
    await page.getByLabel('Password', { exact: true }).fill('wrong password here');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not correct' }).waitFor();
    await expectAccessible(page, 'Sign in');

    await page.goto('/forgot-password');
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    await expectAccessible(page, 'Forgot password');
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByText('Enter the email address you registered with.', { exact: true }).waitFor();
    await expectAccessible(page, 'Forgot password');
    await page.getByLabel('Email', { exact: true }).fill('nobody@example.com');
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('status').filter({ hasText: 'If an account uses nobody@example.com' }).waitFor();
    await expectAccessible(page, 'Forgot password');

    await page.goto(`/reset-password#token=${'A'.repeat(43)}`);
    await page.getByRole('heading', { name: 'This link does not work' }).waitFor();
    await expectAccessible(page, 'Reset your password');

    await page.goto('/no/such/page');
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    await expectAccessible(page, 'Page not found');

    // This app runs without a dev mailbox, so the page says it is off.
    await page.goto('/dev/mailbox');
    await page.getByText('The dev mailbox is off').waitFor();
    await expectAccessible(page, 'Dev mailbox');
    await context.close();
  });

  it('finds no violations on the reset form and its countdown (reset API answered per the documented contract)', async () => {
    const { context, page } = await openSchemed();
    await page.route('**/api/auth/reset-password/verify', (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ valid: true, expiresAt: new Date(Date.now() + 3600_000).toISOString() }) }),
    );
    await page.route('**/api/auth/reset-password', (route) => route.fulfill({ status: 204 }));
    await page.goto(`/reset-password#token=${'B'.repeat(43)}`);
    await page.getByLabel('New password', { exact: true }).waitFor();
    await expectAccessible(page, 'Reset your password');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByText('Enter a new password.').waitFor();
    await expectAccessible(page, 'Reset your password');
    await page.getByLabel('New password', { exact: true }).fill('a long enough new passphrase');
    await page.getByLabel('Confirm new password', { exact: true }).fill('a long enough new passphrase');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('button', { name: 'Sign in now' }).waitFor();
    await expectAccessible(page, 'Reset your password');
    await context.close();
  });

  it('finds no violations on the signed-in pages of an admin: home, users (with its dialogs), change password, settings (with an error and a test result), mail and audit', async () => {
    const { context, page } = await signedIn('root');

    await page.goto('/');
    await page.getByText('There are 2 users.').waitFor();
    await expectAccessible(page, 'Home');

    await page.goto('/users');
    await page.getByRole('rowheader', { name: 'Uma User' }).waitFor();
    await expectAccessible(page, 'Users');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByText('Give an email, a username or both.').waitFor();
    await expectAccessible(page, 'Users');

    await page.getByRole('button', { name: 'Edit Uma User' }).click();
    await page.getByRole('dialog', { name: 'Edit Uma User' }).waitFor();
    await expectAccessible(page, 'Users');
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });

    await page.getByRole('button', { name: 'Delete Uma User' }).click();
    await page.getByRole('alertdialog', { name: 'Delete Uma User?' }).waitFor();
    await expectAccessible(page, 'Users');
    await page.keyboard.press('Escape');
    await page.getByRole('alertdialog').waitFor({ state: 'detached' });
    // Focus went back to the button that opened the dialog.
    expect(await becomesFocused(page, page.getByRole('button', { name: 'Delete Uma User' }))).toBe(true);

    await page.goto('/change-password');
    await page.getByRole('heading', { name: 'Change your password' }).waitFor();
    await expectAccessible(page, 'Change password');

    await page.goto('/settings');
    await page.getByLabel('Host', { exact: true }).waitFor();
    await expectAccessible(page, 'Settings');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Enter the SMTP host, such as smtp.gmail.com.').waitFor();
    await expectAccessible(page, 'Settings');
    // The test on an incomplete form is refused with a message (the settings page's own tests cover its steps).
    await page.getByLabel('To address', { exact: true }).fill('rita@example.com');
    await page.getByRole('button', { name: 'Send test email' }).click();
    await page.getByRole('form', { name: 'Send test email' }).getByRole('alert').filter({ hasText: /\S/ }).waitFor();
    await expectAccessible(page, 'Settings');
    // Microsoft Graph shows other fields.
    await page.getByLabel('Microsoft 365 — Microsoft Graph').check();
    await page.getByLabel('Tenant ID', { exact: true }).waitFor();
    await expectAccessible(page, 'Settings');

    await page.goto('/mail');
    await page.getByText('No emails yet.').waitFor();
    await expectAccessible(page, 'Mail deliveries');

    await page.goto('/audit');
    await page.getByRole('table').waitFor();
    await expectAccessible(page, 'Audit log');

    // Signing out: the login page says so.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('status').filter({ hasText: 'You are signed out.' }).waitFor();
    await expectAccessible(page, 'Sign in');
    await context.close();
  });

  it('finds no violations on the pages a non-admin sees, including "no access"', async () => {
    const { context, page } = await signedIn('uma@example.com');
    await page.goto('/');
    await page.getByRole('heading', { name: 'Welcome, Uma User' }).waitFor();
    await expectAccessible(page, 'Home');
    await page.getByRole('banner').getByRole('link', { name: 'My account' }).click();
    await page.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
    await page.waitForLoadState('networkidle');
    await expectAccessible(page, 'My account');
    await page.goto('/users');
    await page.getByRole('heading', { name: 'You do not have access' }).waitFor();
    await expectAccessible(page, 'You do not have access');
    await page.goto('/settings');
    await page.getByRole('heading', { name: 'You do not have access' }).waitFor();
    await expectAccessible(page, 'You do not have access');
    await context.close();
  });

  it('fits a phone screen without sideways scrolling', async () => {
    const { context, page } = await signedIn('root');
    await page.setViewportSize({ width: 360, height: 740 });
    for (const [path, heading] of [
      ['/login', 'Welcome, Rita Root'],
      ['/', 'Welcome, Rita Root'],
      ['/users', 'Users'],
      ['/change-password', 'Change your password'],
      ['/settings', 'Settings'],
      ['/mail', 'Mail deliveries'],
      ['/audit', 'Audit log'],
      ['/dev/mailbox', 'Dev mailbox'],
    ] as const) {
      await page.goto(path);
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, path).toBeLessThanOrEqual(0);
    }
    await context.close();
    const signedOut = await openSchemed();
    await signedOut.page.setViewportSize({ width: 360, height: 740 });
    for (const path of ['/login', '/forgot-password']) {
      await signedOut.page.goto(path);
      await signedOut.page.getByRole('heading', { level: 1 }).waitFor();
      expect(await signedOut.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), path).toBeLessThanOrEqual(0);
    }
    await signedOut.context.close();
  });

  it('finds no violations in the lock and session states: a locked sign-in, Users with a locked account (also on a phone), Home’s sessions and the signed-out-everywhere notice', async () => {
    const lee = await addUser(app.ctx, { username: 'lee', name: 'Lee Held' });
    await app.ctx.db.updateTable('users').set({ failed_login_count: 100, locked_at: Date.now() }).where('id', '=', lee.id).execute();

    const visitor = await openSchemed();
    await visitor.page.goto('/login');
    await visitor.page.getByLabel('Email or username').fill('lee');
    await visitor.page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await visitor.page.getByRole('button', { name: 'Sign in' }).click();
    await visitor.page.getByRole('alert').getByRole('link', { name: 'Forgot password?' }).waitFor();
    await expectAccessible(visitor.page, 'Sign in');
    await visitor.context.close();

    const { context, page } = await signedIn('root');
    await page.goto('/users');
    await page.getByRole('button', { name: 'Unlock Lee Held' }).waitFor();
    await expectAccessible(page, 'Users');
    await page.setViewportSize({ width: 360, height: 740 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 1280, height: 800 });

    await page.goto('/');
    await page.getByRole('region', { name: 'Your sessions' }).waitFor();
    await expectAccessible(page, 'Home');
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await page.getByRole('status').filter({ hasText: 'You were signed out on every device.' }).waitFor();
    await expectAccessible(page, 'Sign in');
    await context.close();
  });
});
}
