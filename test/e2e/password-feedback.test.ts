import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, describeInBrowser, launchBrowser, openPage, startWebApp, type RunningApp } from '../helpers/browser.js';

// Shaped like a real reset token (43 base64url characters) but never issued.
const FAKE_TOKEN = 'Zm9yZ2VkLXRva2VuLXRoYXQtd2FzLW5ldmVyLWlzc3Vl';

describeInBrowser('live password length feedback in Chromium (GET /api/auth/password-policy)', () => {
  let app: RunningApp;
  let browser: Browser;

  beforeAll(async () => {
    // Not the default 15: the pages must take the number from the server.
    [app, browser] = await Promise.all([startWebApp({ env: { PASSWORD_MIN_LENGTH: '20' } }), launchBrowser()]);
    await addUser(app.ctx, { username: 'casey', name: 'Casey Change' });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** The polite live region that speaks the count once typing pauses. */
  function spoken(page: Page, text: string | RegExp) {
    return page.getByRole('status').filter({ hasText: text });
  }

  it('counts code points as the person types on the reset page, without marking the field invalid, and still lists the server’s reasons', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    await page.route('**/api/auth/reset-password/verify', (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ valid: true, expiresAt: new Date(Date.now() + 3600_000).toISOString() }) }),
    );
    await page.route('**/api/auth/reset-password', (route) =>
      route.fulfill({
        status: 400,
        contentType: 'application/json',
        body: JSON.stringify({
          error: 'weak_password',
          message: 'This password is on a list of commonly used passwords.',
          reasons: [{ code: 'common', message: 'This password is on a list of commonly used passwords.' }],
        }),
      }),
    );
    await page.goto(`/reset-password#token=${FAKE_TOKEN}`);
    const password = page.getByLabel('New password', { exact: true });
    await page.getByText('At least 20 characters.').waitFor();

    await password.fill('twelve chars');
    await page.getByText('12 of at least 20 characters', { exact: true }).first().waitFor();
    // Said once typing pauses, not on every keystroke.
    expect(await spoken(page, /characters/).count()).toBe(0);
    await spoken(page, '12 of at least 20 characters').waitFor();
    expect(await password.getAttribute('aria-invalid')).toBeNull();

    // Characters are code points, as the server counts them: each key emoji is one, not two.
    await password.fill('🔑'.repeat(19));
    await page.getByText('19 of at least 20 characters', { exact: true }).first().waitFor();
    await password.fill('🔑'.repeat(20));
    await page.getByText('20 characters ✓ long enough', { exact: true }).waitFor();
    await spoken(page, 'Long enough: at least 20 characters.').waitFor();
    await password.fill(`${'x'.repeat(130)}`);
    await page.getByText('130 characters: 2 over the limit of 128', { exact: true }).waitFor();
    expect(await axeViolations(page)).toEqual([]);

    // The server has the last word: its reasons are listed under the field as before.
    await password.fill('a passphrase that is long enough');
    await page.getByLabel('Confirm new password', { exact: true }).fill('a passphrase that is long enough');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByText('Choose a different password.').waitFor();
    await page.getByText('This password is on a list of commonly used passwords.', { exact: true }).waitFor();
    expect(await password.getAttribute('aria-invalid')).toBe('true');
    await page.getByText('32 characters ✓ long enough', { exact: true }).waitFor();
    expect(await axeViolations(page)).toEqual([]);

    expect(record.requests.filter((url) => url.endsWith('/api/auth/password-policy'))).toHaveLength(1);
    expect(record.pageErrors).toEqual([]);
    await context.close();
  });

  it('gives the same feedback on the change-password page', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    expect((await page.request.post('/api/auth/login', { data: { login: 'casey', password: STRONG_PASSWORD } })).status()).toBe(200);
    await page.goto('/change-password');
    const fresh = page.getByLabel('New password', { exact: true });
    await fresh.fill('short one');
    await page.getByText('9 of at least 20 characters', { exact: true }).first().waitFor();
    await spoken(page, '9 of at least 20 characters').waitFor();
    // Only the new password is counted, not the current one or the confirmation.
    await page.getByLabel('Current password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByLabel('Confirm new password', { exact: true }).fill('x');
    expect(await page.getByText('1 of at least 20 characters', { exact: true }).count()).toBe(0);
    expect(await page.getByText(`${STRONG_PASSWORD.length} characters ✓ long enough`, { exact: true }).count()).toBe(0);
    await page.getByText('9 of at least 20 characters', { exact: true }).first().waitFor();
    expect(await axeViolations(page)).toEqual([]);

    // The server refuses what the page only hinted at.
    await page.getByLabel('Confirm new password', { exact: true }).fill('short one');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByText('Use at least 20 characters.', { exact: true }).waitFor();
    await context.close();
  });
});
