import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { describeInBrowser, launchBrowser, openPage, startWebApp, type RunningApp } from '../helpers/browser.js';

describeInBrowser('what the pages load, in Chromium', () => {
  let app: RunningApp;
  let browser: Browser;

  beforeAll(async () => {
    [app, browser] = await Promise.all([startWebApp(), launchBrowser()]);
    await addUser(app.ctx, { username: 'root', name: 'Rita Root', role: 'system-admin' });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('requests nothing from any other origin and trips no CSP rule on any page', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    const documents: Array<{ url: string; csp: string | undefined }> = [];
    page.on('response', (response) => {
      if (response.request().resourceType() === 'document') documents.push({ url: response.url(), csp: response.headers()['content-security-policy'] });
    });

    for (const [path, heading] of [
      ['/login', 'Sign in'],
      ['/forgot-password', 'Forgot your password?'],
      [`/reset-password#token=${'C'.repeat(43)}`, 'This link does not work'],
      ['/nowhere', 'Page not found'],
      ['/dev/mailbox', 'Dev mailbox'],
    ] as const) {
      await page.goto(path);
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
    }
    await page.goto('/login');
    await page.getByLabel('Email or username').fill('root');
    await page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Welcome, Rita Root' }).waitFor();
    for (const [path, heading] of [
      ['/users', 'Users'],
      ['/change-password', 'Change your password'],
      ['/settings', 'Settings'],
      ['/mail', 'Mail deliveries'],
      ['/audit', 'Audit log'],
      ['/', 'Welcome, Rita Root'],
    ] as const) {
      await page.goto(path);
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
    }
    await page.getByRole('region', { name: 'Administration' }).getByText('There is 1 user.').waitFor();

    // The pages did load scripts, a stylesheet and API calls, all from the app's origin.
    expect(record.requests.some((url) => /\/assets\/index-[\w-]+\.js$/.test(url))).toBe(true);
    expect(record.requests.some((url) => /\/assets\/[\w-]+\.css$/.test(url))).toBe(true);
    expect(record.requests.some((url) => url.endsWith('/api/auth/me'))).toBe(true);
    expect(record.foreignRequests()).toEqual([]);
    expect(record.cspViolations).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    // Every page arrived under the strict CSP, so the checks above ran under it.
    expect(documents.length).toBeGreaterThanOrEqual(8);
    for (const doc of documents) expect(doc.csp, doc.url).toMatch(/script-src 'self';.*style-src 'self'/);
    await context.close();
  });

  it('reports a CSP violation when a page breaks the policy (the check above can fail)', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    await page.goto('/login');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.evaluate(() => {
      const style = document.createElement('style');
      style.textContent = 'body { color: red }';
      document.head.append(style);
    });
    await page.waitForTimeout(100);
    expect(record.cspViolations.length).toBeGreaterThan(0);
    await context.close();
  });
});
