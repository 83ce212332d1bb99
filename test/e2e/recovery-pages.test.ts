import type { Browser, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OTHER_STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { becomesFocused, describeInBrowser, isFocused, launchBrowser, openPage, pathOf, startWebApp, type RunningApp } from '../helpers/browser.js';

// Shaped like a real reset token (43 base64url characters) but never issued.
const FAKE_TOKEN = 'Zm9yZ2VkLXRva2VuLXRoYXQtd2FzLW5ldmVyLWlzc3Vl';

describeInBrowser('forgot-password and reset-password pages in Chromium', () => {
  let app: RunningApp;
  let browser: Browser;

  beforeAll(async () => {
    [app, browser] = await Promise.all([startWebApp(), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** The documented verify/reset answers (DESIGN §2), served in the browser. */
  async function answerResetApi(page: Page, reset: (body: Record<string, unknown>) => { status: number; body?: unknown }): Promise<Request[]> {
    const seen: Request[] = [];
    await page.route('**/api/auth/reset-password/verify', async (route) => {
      seen.push(route.request());
      await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ valid: true, expiresAt: '2099-01-01T10:00:00.000Z' }) });
    });
    await page.route('**/api/auth/reset-password', async (route) => {
      seen.push(route.request());
      const answer = reset(route.request().postDataJSON() as Record<string, unknown>);
      await route.fulfill({ status: answer.status, contentType: 'application/json', body: answer.body === undefined ? '' : JSON.stringify(answer.body) });
    });
    return seen;
  }

  it('recovers a forgotten password end to end: Forgot password?, the emailed link, a new password, the countdown, sign-in', async () => {
    await addUser(app.ctx, { email: 'rosa@example.com', name: 'Rosa Reset' });
    const { context, page, record } = await openPage(browser, app.baseUrl);
    await page.goto('/login');
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.getByLabel('Email', { exact: true }).fill('rosa@example.com');
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('status').filter({ hasText: 'If an account uses rosa@example.com, we sent a link' }).waitFor();

    await app.ctx.outbox.drain();
    const mail = app.ctx.mailer.sent.find((m) => m.to === 'rosa@example.com');
    const link = /https?:\/\/\S+#token=[A-Za-z0-9_-]{43}/.exec(mail?.text ?? '')?.[0];
    expect(link?.startsWith(`${app.baseUrl}/reset-password#token=`)).toBe(true);
    const token = link!.split('#token=')[1]!;

    await page.goto(link!);
    await page.getByLabel('New password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    expect(page.url()).toBe(`${app.baseUrl}/reset-password`);
    await page.getByLabel('Confirm new password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('status').filter({ hasText: 'Your password was changed.' }).waitFor();
    await page.getByRole('button', { name: 'Sign in now' }).click();
    // The sign-in page says why the person is there, once.
    await page.getByRole('status').filter({ hasText: 'Your password was changed. Sign in with the new one.' }).waitFor();
    expect(await page.title()).toBe('Sign in · Gatehouse');

    await page.getByLabel('Email or username').fill('rosa@example.com');
    await page.getByLabel('Password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Welcome, Rosa Reset' }).waitFor();
    expect(record.requests.filter((url) => url.includes(token))).toEqual([]);
    expect(record.foreignRequests()).toEqual([]);

    // The link worked once.
    await page.goto(link!);
    await page.getByRole('heading', { name: 'This link does not work' }).waitFor();
    await context.close();
  });

  it('takes a token from the query string (an old or pasted link) out of the address bar, then resets with it', async () => {
    await addUser(app.ctx, { email: 'quinn@example.com', name: 'Quinn Query' });
    await app.ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'quinn@example.com' }, remoteAddress: '198.51.100.77' });
    await app.ctx.outbox.drain();
    const token = /#token=([A-Za-z0-9_-]{43})/.exec(app.ctx.mailer.sent.find((m) => m.to === 'quinn@example.com')?.text ?? '')?.[1];
    expect(token).toBeDefined();

    const { context, page, record } = await openPage(browser, app.baseUrl);
    const verified: Request[] = [];
    page.on('request', (r) => (r.url().endsWith('/api/auth/reset-password/verify') ? verified.push(r) : undefined));
    await page.goto(`/reset-password?token=${token}`);
    const heading = page.getByRole('heading', { level: 1 });
    await heading.waitFor();
    // The page took the token (not "Open the link from your email") and cleared the address bar.
    expect(await heading.innerText()).toBe('Choose a new password');
    expect(page.url()).toBe(`${app.baseUrl}/reset-password`);
    await page.getByLabel('New password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    expect(verified.map((r) => r.postDataJSON())).toEqual([{ token }]);
    await page.getByLabel('Confirm new password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('status').filter({ hasText: 'Your password was changed.' }).waitFor();
    await page.getByRole('button', { name: 'Sign in now' }).click();
    await page.getByLabel('Email or username').fill('quinn@example.com');
    await page.getByLabel('Password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Welcome, Quinn Query' }).waitFor();

    // Only the navigation that opened the page carried the token, and the server logged its path alone.
    expect(record.requests.filter((url) => url.includes(token!))).toEqual([`${app.baseUrl}/reset-password?token=${token}`]);
    expect(app.ctx.logs.filter((line) => line.includes(token!))).toEqual([]);
    expect(app.ctx.logs.some((line) => line.includes('"url":"/reset-password?token=[redacted]"'))).toBe(true);
    await context.close();
  });

  it('removes the token from the address bar on load and says an unknown link does not work', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    const verify = page.waitForRequest('**/api/auth/reset-password/verify');
    await page.goto(`/reset-password#token=${FAKE_TOKEN}`);
    const request = await verify;
    await page.getByRole('heading', { name: 'This link does not work' }).waitFor();

    expect(page.url()).toBe(`${app.baseUrl}/reset-password`);
    expect(await page.evaluate(() => window.location.hash)).toBe('');
    // The token travels only in a POST body: never in a URL the server or a proxy logs.
    expect(request.method()).toBe('POST');
    expect(request.postDataJSON()).toEqual({ token: FAKE_TOKEN });
    expect(record.requests.filter((url) => url.includes(FAKE_TOKEN))).toEqual([]);
    expect(await page.getByRole('alert').innerText()).toBe('This reset link is invalid or has expired.');

    await page.getByRole('link', { name: 'Request a new link' }).click();
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    expect(pathOf(page)).toBe('/forgot-password');
    await context.close();
  });

  it('asks for the link from the email when the page is opened without a token', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    await page.goto('/reset-password');
    await page.getByRole('heading', { name: 'Open the link from your email' }).waitFor();
    expect(record.requests.filter((url) => url.includes('/api/auth/reset-password'))).toEqual([]);
    await context.close();
  });

  it('sets a new password, lists the policy reasons first, then counts down to the sign-in page', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    let attempts = 0;
    const seen = await answerResetApi(page, () =>
      ++attempts === 1
        ? {
            status: 400,
            body: {
              error: 'weak_password',
              message: 'Use at least 15 characters. This password is on a list of commonly used passwords.',
              reasons: [
                { code: 'too_short', message: 'Use at least 15 characters.' },
                { code: 'common', message: 'This password is on a list of commonly used passwords.' },
              ],
            },
          }
        : { status: 204 },
    );
    await page.goto(`/reset-password#token=${FAKE_TOKEN}`);
    const password = page.getByLabel('New password', { exact: true });
    const confirm = page.getByLabel('Confirm new password', { exact: true });
    await password.waitFor();
    expect(page.url()).toBe(`${app.baseUrl}/reset-password`);
    await page.getByText('This link works until').waitFor();

    // A mismatch is caught in the page, before any request.
    await password.fill('password1');
    await confirm.fill('password2');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByText('The two new passwords do not match.').waitFor();
    expect(attempts).toBe(0);

    await confirm.fill('password1');
    await page.getByRole('button', { name: 'Set new password' }).click();
    // The server's answer shown first: until then aria-describedby names only the field's hint.
    await page.getByText('This password is on a list of commonly used passwords.', { exact: true }).waitFor();
    const errorId = (await password.getAttribute('aria-describedby'))!.split(' ')[0];
    const reasons = page.locator(`[id="${errorId}"]`);
    await reasons.getByRole('listitem').first().waitFor();
    expect(await reasons.getByRole('listitem').allInnerTexts()).toEqual([
      'Use at least 15 characters.',
      'This password is on a list of commonly used passwords.',
    ]);
    expect(await isFocused(page, password)).toBe(true);

    await password.fill('a much longer passphrase for the test');
    await confirm.fill('a much longer passphrase for the test');
    await page.getByRole('button', { name: 'Set new password' }).click();
    const status = page.getByRole('status').filter({ hasText: 'Your password was changed.' });
    await status.waitFor();
    expect(await status.innerText()).toMatch(/Going to the sign-in page in [45] seconds\./);
    expect(seen.at(-1)!.postDataJSON()).toEqual({
      token: FAKE_TOKEN,
      password: 'a much longer passphrase for the test',
      confirmPassword: 'a much longer passphrase for the test',
    });
    const startedMs = Date.now();
    // Every text the status shows until the page leaves, recorded in the page: on a busy machine
    // the last seconds can pass between two looks from here.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { countdown: string[] }).countdown = seen;
      const status = [...document.querySelectorAll('[role="status"]')].find((e) => e.textContent?.includes('Your password was changed.'))!;
      new MutationObserver(() => seen.push(status.textContent ?? '')).observe(status, { subtree: true, childList: true, characterData: true });
    });
    const seenCountdown = (): Promise<string[]> => page.evaluate(() => (window as unknown as { countdown: string[] }).countdown);
    await expect.poll(async () => (await seenCountdown()).some((t) => /Going to the sign-in page in [123] seconds?\./.test(t)), { timeout: 8000 }).toBe(true);
    await page.waitForURL(`${app.baseUrl}/login`, { timeout: 8000 });
    const waitedMs = Date.now() - startedMs;
    expect(waitedMs).toBeGreaterThan(500);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByRole('status').filter({ hasText: 'Your password was changed. Sign in with the new one.' }).waitFor();
    await context.close();
  });

  it('goes to the sign-in page at once with "Sign in now"', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    await answerResetApi(page, () => ({ status: 204 }));
    await page.goto(`/reset-password#token=${FAKE_TOKEN}`);
    await page.getByLabel('New password', { exact: true }).fill('a much longer passphrase for the test');
    await page.getByLabel('Confirm new password', { exact: true }).fill('a much longer passphrase for the test');
    await page.getByRole('button', { name: 'Set new password' }).click();
    const goNow = page.getByRole('button', { name: 'Sign in now' });
    await goNow.waitFor();
    expect(await becomesFocused(page, goNow)).toBe(true);
    const clickedMs = Date.now();
    await goNow.click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(Date.now() - clickedMs).toBeLessThan(2000);
    expect(pathOf(page)).toBe('/login');
    expect(await page.getByRole('status').filter({ hasText: /\S/ }).innerText()).toBe('Your password was changed. Sign in with the new one.');
    // Said once: a reload starts without it.
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await page.getByRole('status').filter({ hasText: /\S/ }).count()).toBe(0);
    await context.close();
  });

  it('shows the server’s password_mismatch and an expired link that fails on submit', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    let attempts = 0;
    await answerResetApi(page, () =>
      ++attempts === 1
        ? { status: 400, body: { error: 'password_mismatch', message: 'The passwords do not match.' } }
        : { status: 400, body: { error: 'invalid_or_expired_token', message: 'This link is invalid or has expired.' } },
    );
    await page.goto(`/reset-password#token=${FAKE_TOKEN}`);
    await page.getByLabel('New password', { exact: true }).fill('a much longer passphrase for the test');
    await page.getByLabel('Confirm new password', { exact: true }).fill('a much longer passphrase for the test');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByText('The two new passwords do not match.').waitFor();
    expect(await page.getByLabel('Confirm new password', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('heading', { name: 'This link does not work' }).waitFor();
    expect(attempts).toBe(2);
    await context.close();
  });

  it('answers every address on the forgot-password page with the same confirmation, and links back to sign-in', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    const bodies: unknown[] = [];
    await page.route('**/api/auth/forgot-password', async (route) => {
      bodies.push(route.request().postDataJSON());
      await route.fulfill({ status: 202, contentType: 'application/json', body: JSON.stringify({ message: 'If an account uses that address, we sent a link.' }) });
    });
    await page.goto('/login');
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.getByRole('heading', { name: 'Forgot your password?' }).waitFor();
    await expect.poll(() => page.title()).toBe('Forgot password · Gatehouse');

    const email = page.getByLabel('Email', { exact: true });
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByText('Enter the email address you registered with.', { exact: true }).waitFor();
    expect(await email.getAttribute('aria-invalid')).toBe('true');
    expect(bodies).toEqual([]);

    const confirmations: string[] = [];
    for (const address of ['known@example.com', 'unknown@example.com']) {
      await email.fill(address);
      await page.getByRole('button', { name: 'Send reset link' }).click();
      const status = page.getByRole('status').filter({ hasText: 'If an account uses' });
      await status.waitFor();
      confirmations.push((await status.innerText()).replace(address, '<address>'));
      await page.getByRole('button', { name: 'Use another address' }).click();
    }
    expect(confirmations[0]).toBe(confirmations[1]);
    expect(confirmations[0]).toContain('If an account uses <address>, we sent a link');
    expect(bodies).toEqual([{ email: 'known@example.com' }, { email: 'unknown@example.com' }]);

    await page.getByRole('link', { name: 'Back to sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await context.close();
  });

  it('shows a malformed-address refusal from the server on the email field', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    await page.route('**/api/auth/forgot-password', (route) =>
      route.fulfill({
        status: 400,
        contentType: 'application/json',
        body: JSON.stringify({ error: 'invalid_request', message: 'Some fields are not valid.', fields: { email: 'Enter one email address, like name@example.com.' } }),
      }),
    );
    await page.goto('/forgot-password');
    await page.getByLabel('Email', { exact: true }).fill('a@b@c');
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByText('Enter one email address, like name@example.com.').waitFor();
    expect(await page.getByRole('status').filter({ hasText: 'If an account uses' }).count()).toBe(0);
    await context.close();
  });
});
