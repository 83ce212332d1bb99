import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { startDevInbox, type DevInbox } from '../../src/mail/dev-inbox.js';
import { cryptoRandom } from '../../src/random.js';
import { OTHER_STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, describeInBrowser, launchBrowser, openPage, pathOf, startWebApp, type RunningApp } from '../helpers/browser.js';

describeInBrowser('the dev mailbox in Chromium: the whole "Forgot password" flow on a development machine', () => {
  let app: RunningApp;
  /** the same app without a dev mailbox, as in production */
  let production: RunningApp;
  let devInbox: DevInbox;
  let browser: Browser;

  beforeAll(async () => {
    devInbox = await startDevInbox({ clock: systemClock, random: cryptoRandom });
    [app, production, browser] = await Promise.all([startWebApp({ deps: { devInbox }, mailer: devInbox.mailer }), startWebApp(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await production?.close();
    await devInbox?.close();
  });

  async function expectAccessible(page: Page, title: string): Promise<void> {
    await expect.poll(() => page.title()).toBe(`${title} · Gatehouse`);
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  }

  it('requests a reset, reads the email in the dev mailbox, clicks Reset Password in the preview, sets a password and signs in', async () => {
    await addUser(app.ctx, { email: 'dora@example.com', name: 'Dora Dev' });
    const { context, page, record } = await openPage(browser, app.baseUrl);

    // Signed out, as someone who forgot their password is.
    await page.goto('/login');
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.getByLabel('Email', { exact: true }).fill('dora@example.com');
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('status').filter({ hasText: 'If an account uses dora@example.com, we sent a link' }).waitFor();
    await app.ctx.outbox.drain();

    // The confirmation links to the dev mailbox because it answers here.
    await page.getByRole('link', { name: 'dev mailbox' }).click();
    await page.getByRole('heading', { name: 'Dev mailbox', level: 1 }).waitFor();
    expect(pathOf(page)).toBe('/dev/mailbox');
    const row = page.getByRole('row').filter({ hasText: 'dora@example.com' });
    await row.getByRole('button', { name: 'Reset your password' }).click();

    const message = page.getByRole('region', { name: 'Reset your password' });
    await message.getByRole('heading', { name: 'Reset your password', level: 2 }).waitFor();
    expect(await message.getByRole('definition').allInnerTexts()).toEqual(expect.arrayContaining(['dora@example.com']));
    // The text part, with the one link.
    const text = await message.getByText(/reset-password#token=/).innerText();
    expect(text).toContain(`${app.baseUrl}/reset-password#token=`);

    const preview = message.getByTitle('Email: Reset your password');
    expect(await preview.getAttribute('sandbox')).toBe('allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation');
    expect(await preview.getAttribute('src')).toMatch(/^\/api\/dev\/mailbox\/[\w-]+\/html$/);
    await expectAccessible(page, 'Dev mailbox');

    // The button in the email opens the reset page in a new tab, as in a mail client.
    const [resetPage] = await Promise.all([
      context.waitForEvent('page'),
      preview.contentFrame().getByRole('link', { name: 'Reset Password' }).click(),
    ]);
    await resetPage.getByLabel('New password', { exact: true }).waitFor();
    // The token left the address bar as soon as the page loaded.
    expect(resetPage.url()).toBe(`${app.baseUrl}/reset-password`);
    await resetPage.getByLabel('New password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await resetPage.getByLabel('Confirm new password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await resetPage.getByRole('button', { name: 'Set new password' }).click();
    await resetPage.getByRole('status').filter({ hasText: 'Your password was changed.' }).waitFor();

    // The countdown takes them to the sign-in page on its own.
    await resetPage.waitForURL(`${app.baseUrl}/login`, { timeout: 10_000 });
    await resetPage.getByLabel('Email or username').fill('dora@example.com');
    await resetPage.getByLabel('Password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await resetPage.getByRole('button', { name: 'Sign in' }).click();
    await resetPage.getByRole('heading', { name: 'Welcome, Dora Dev' }).waitFor();

    // The "password changed" email arrived in the mailbox too.
    await app.ctx.outbox.drain();
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('row').filter({ hasText: 'Your password was changed' }).waitFor();

    expect(record.foreignRequests()).toEqual([]);
    expect(record.cspViolations).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    // A non-admin and a signed-out visitor never load the admin pages' code; the mailbox is its own chunk.
    expect(record.requests.some((url) => /\/assets\/dev-mailbox-[\w-]+\.js$/.test(url))).toBe(true);
    expect(record.requests.filter((url) => /\/assets\/(?:users|settings|mail|audit)-[\w-]+\.js$/.test(url))).toEqual([]);
    await context.close();
    // The countdown alone takes five seconds.
  }, 60_000);

  it('says the dev mailbox is off where it does not answer, and the forgot-password confirmation does not link to it', async () => {
    const { context, page } = await openPage(browser, production.baseUrl);
    await page.goto('/dev/mailbox');
    await page.getByText('The dev mailbox is off (production, or MAIL_DEV_INBOX=false, or not on this machine)').waitFor();
    await expectAccessible(page, 'Dev mailbox');

    await page.goto('/forgot-password');
    await page.getByLabel('Email', { exact: true }).fill('someone@example.com');
    const probe = page.waitForResponse((response) => response.url().endsWith('/api/dev/mailbox'));
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('status').filter({ hasText: 'If an account uses someone@example.com' }).waitFor();
    expect((await probe).status()).toBe(404);
    expect(await page.getByRole('link', { name: 'dev mailbox' }).count()).toBe(0);
    await context.close();
  });

  it('lists nothing yet with a sentence saying so, and passes axe', async () => {
    const empty = await startDevInbox({ clock: systemClock, random: cryptoRandom });
    const other = await startWebApp({ deps: { devInbox: empty }, mailer: empty.mailer });
    try {
      const { context, page } = await openPage(browser, other.baseUrl);
      await page.goto('/dev/mailbox');
      await page.getByText('No emails yet.').waitFor();
      await expectAccessible(page, 'Dev mailbox');
      await context.close();
    } finally {
      await other.close();
      await empty.close();
    }
  });
});
