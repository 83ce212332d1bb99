import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MAX_CONSECUTIVE_LOGIN_FAILURES } from '../../src/accounts/service.js';
import { createMemoryRateLimiter, failureDelaySeconds } from '../../src/limits/rate-limiter.js';
import { OTHER_STRONG_PASSWORD, STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, becomesFocused, describeInBrowser, isFocused, launchBrowser, openPage, pathOf, startWebApp, type RunningApp } from '../helpers/browser.js';

const LOCKED_MESSAGE = 'Too many failed sign-ins — reset your password, or ask an admin.';

describeInBrowser('sign-in, the forced password change and user administration in Chromium', () => {
  let app: RunningApp;
  let browser: Browser;

  // The limiter's clock: real time plus what a test skips ahead (the growing per-login waits).
  let skippedMs = 0;
  const limiterClock = { now: () => new Date(Date.now() + skippedMs) };

  beforeAll(async () => {
    [app, browser] = await Promise.all([startWebApp({ deps: { limiter: createMemoryRateLimiter(limiterClock) } }), launchBrowser()]);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  /** Fills and sends the sign-in form of a page already on /login. */
  async function submitSignIn(page: Page, login: string, password = STRONG_PASSWORD): Promise<void> {
    await page.getByLabel('Email or username').fill(login);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  async function expectNoAxeViolations(page: Page): Promise<void> {
    await expect.poll(() => page.title()).toMatch(/ · Gatehouse$/);
    expect(await axeViolations(page)).toEqual([]);
  }

  async function cookieNames(context: BrowserContext): Promise<string[]> {
    return (await context.cookies()).map((c) => c.name).sort();
  }

  it('takes the first admin through the forced password change to the users page, and the user they add sees no admin page', async () => {
    await addUser(app.ctx, { username: 'admin', name: 'Ada Admin', role: 'system-admin' }, { mustChangePassword: true });
    const { context, page, record } = await openPage(browser, app.baseUrl);

    // The page they wanted comes first; signing in comes before it.
    await page.goto('/users');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(pathOf(page)).toBe('/login?next=%2Fusers');
    await page.getByLabel('Email or username').fill('admin');
    await page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.getByRole('heading', { name: 'Change your password' }).waitFor();
    expect(pathOf(page)).toBe('/change-password');
    expect(await page.getByRole('navigation').count()).toBe(0);
    // Every other page sends them back here until the password is changed.
    await page.goto('/users');
    await page.getByRole('heading', { name: 'Change your password' }).waitFor();
    expect(pathOf(page)).toBe('/change-password');

    const current = page.getByLabel('Current password', { exact: true });
    const fresh = page.getByLabel('New password', { exact: true });
    const confirm = page.getByLabel('Confirm new password', { exact: true });
    const change = page.getByRole('button', { name: 'Change password' });

    await current.fill(STRONG_PASSWORD);
    await fresh.fill(OTHER_STRONG_PASSWORD);
    await confirm.fill(`${OTHER_STRONG_PASSWORD}!`);
    await change.click();
    await page.getByText('The two new passwords do not match.').waitFor();
    expect(await confirm.getAttribute('aria-invalid')).toBe('true');
    expect(await isFocused(page, confirm)).toBe(true);

    // The server's reasons for refusing a weak password are listed under the field.
    await fresh.fill('1234567890123456');
    await confirm.fill('1234567890123456');
    await change.click();
    await page.getByText('Avoid sequences (like "abcd" or "1234").').waitFor();
    expect(await fresh.getAttribute('aria-invalid')).toBe('true');

    await current.fill('not the current password');
    await fresh.fill(OTHER_STRONG_PASSWORD);
    await confirm.fill(OTHER_STRONG_PASSWORD);
    await change.click();
    await page.getByText('The current password is not correct.').waitFor();

    // The show toggle reveals only its own field.
    await page.getByRole('button', { name: 'Show new password', exact: true }).click();
    expect(await fresh.getAttribute('type')).toBe('text');
    expect(await confirm.getAttribute('type')).toBe('password');
    expect(await page.getByRole('button', { name: 'Show new password', exact: true }).getAttribute('aria-pressed')).toBe('true');

    await current.fill(STRONG_PASSWORD);
    await change.click();
    await page.getByRole('heading', { name: 'Welcome, Ada Admin' }).waitFor();
    expect(pathOf(page)).toBe('/');
    const main = page.getByRole('main');
    const account = await main.getByRole('region', { name: 'Your account' }).innerText();
    expect(account).toContain('admin');
    expect(account).toContain('System admin');
    await main.getByText('There is 1 user.').waitFor();
    await main.getByText('Add a system admin with a real email so password recovery works.').waitFor();

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
    await page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    const table = page.getByRole('table');
    await table.getByRole('rowheader', { name: /Ada Admin/ }).waitFor();

    await page.getByLabel('Email', { exact: true }).fill('jane@example.com');
    await page.getByLabel('Username', { exact: true }).fill('jane');
    await page.getByLabel('Name', { exact: true }).fill('Jane Doe');
    await page.getByLabel('Role', { exact: true }).selectOption({ label: 'User' });
    await page.getByLabel('Initial password (optional)', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('status').filter({ hasText: 'Added Jane Doe.' }).waitFor();
    const janeRow = table.getByRole('row', { name: /Jane Doe/ });
    await janeRow.waitFor();
    expect(await janeRow.innerText()).toMatch(/jane@example\.com\s+jane\s+User\s+Active/);

    // The same email again is refused on the email field (409 email_taken).
    await page.getByLabel('Email', { exact: true }).fill('JANE@example.com');
    await page.getByLabel('Username', { exact: true }).fill('jane2');
    await page.getByLabel('Name', { exact: true }).fill('Jane Again');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByText('Another user already has this email.').waitFor();
    expect(await page.getByLabel('Email', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(await table.getByRole('row').count()).toBe(3);

    // With another address it is added, and then deleted after confirmation.
    await page.getByLabel('Email', { exact: true }).fill('jane.again@example.com');
    await page.getByRole('button', { name: 'Add user' }).click();
    await table.getByRole('rowheader', { name: 'Jane Again' }).waitFor();
    await table.getByRole('button', { name: 'Delete Jane Again' }).click();
    await page.getByRole('alertdialog', { name: 'Delete Jane Again?' }).getByRole('button', { name: 'Delete user' }).click();
    await page.getByRole('status').filter({ hasText: 'Deleted Jane Again.' }).waitFor();
    expect(await table.getByRole('rowheader', { name: 'Jane Again' }).count()).toBe(0);
    expect(await becomesFocused(page, page.getByRole('heading', { name: 'Users', level: 1 }))).toBe(true);

    // An admin cannot delete their own account (the Users page's own tests cover the row it shows).
    const ada = await app.ctx.db.selectFrom('users').select('id').where('username', '=', 'admin').executeTakeFirstOrThrow();
    const selfDelete = await page.request.delete(`/api/users/${ada.id}`, { headers: { origin: app.baseUrl } });
    expect([selfDelete.status(), (await selfDelete.json()).error]).toEqual([409, 'cannot_delete_self']);

    // Editing: demoting the last admin is refused too; renaming Jane works.
    await table.getByRole('button', { name: 'Edit Jane Doe' }).click();
    const edit = page.getByRole('dialog', { name: 'Edit Jane Doe' });
    await edit.getByLabel('Name', { exact: true }).fill('Jane Q. Doe');
    await edit.getByRole('button', { name: 'Save changes' }).click();
    await table.getByRole('rowheader', { name: 'Jane Q. Doe' }).waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(pathOf(page)).toBe('/login');
    expect(await page.getByRole('status').filter({ hasText: /\S/ }).innerText()).toBe('You are signed out.');
    await context.close();

    // The new user, in a fresh browser profile.
    const jane = await openPage(browser, app.baseUrl);
    await jane.page.goto('/login');
    await jane.page.getByLabel('Email or username').fill('jane@example.com');
    await jane.page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await jane.page.getByRole('button', { name: 'Sign in' }).click();
    await jane.page.getByRole('heading', { name: 'Welcome, Jane Q. Doe' }).waitFor();
    expect(await jane.page.getByRole('main').getByRole('region', { name: 'Your account' }).innerText()).toMatch(/Role\s+User/);
    expect(await jane.page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts()).toEqual(['Home']);
    expect(await jane.page.getByRole('region', { name: 'Administration' }).count()).toBe(0);

    await jane.page.goto('/users');
    await jane.page.getByRole('heading', { name: 'You do not have access' }).waitFor();
    expect(await jane.page.getByRole('table').count()).toBe(0);
    // A non-admin never downloads the admin page's code.
    expect(jane.record.requests.filter((url) => /\/assets\/users-[\w-]+\.js$/.test(url))).toEqual([]);
    expect(record.requests.some((url) => /\/assets\/users-[\w-]+\.js$/.test(url))).toBe(true);

    for (const r of [record, jane.record]) {
      expect(r.foreignRequests()).toEqual([]);
      expect(r.cspViolations).toEqual([]);
      expect(r.pageErrors).toEqual([]);
    }
    await jane.context.close();
  });

  it('shows a wrong password in an aria-live alert and stays on the sign-in page', async () => {
    await addUser(app.ctx, { username: 'wendy', name: 'Wendy Wrong' });
    const { context, page } = await openPage(browser, app.baseUrl);
    await page.goto('/login');
    const alert = page.getByRole('alert').filter({ hasText: /\S/ });
    expect(await alert.count()).toBe(0);

    await page.getByLabel('Email or username').fill('wendy');
    await page.getByLabel('Password', { exact: true }).fill('not my password at all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await alert.waitFor();
    expect(await alert.innerText()).toBe('The sign-in name or password is not correct.');
    // role="alert" is an assertive live region; it was in the page before the message arrived.
    expect(await page.getByRole('alert').count()).toBe(1);
    expect(pathOf(page)).toBe('/login');

    // Empty fields are caught before any request, on the fields themselves.
    await page.getByLabel('Email or username').fill('');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Enter your email or username.').waitFor();
    expect(await page.getByLabel('Email or username').getAttribute('aria-invalid')).toBe('true');
    await context.close();
  });

  it('tells a throttled person how many seconds to wait', async () => {
    await addUser(app.ctx, { username: 'tess', name: 'Tess Throttled' });
    const { context, page } = await openPage(browser, app.baseUrl);
    // Five failures in a row are free; after that each one doubles the wait (1 s, 2 s, 4 s …),
    // answered with 429 and Retry-After. The limiter's clock skips each wait.
    let failures = 0;
    let throttled = 0;
    while (failures < 14) {
      const res = await page.request.post('/api/auth/login', { data: { login: 'tess', password: `wrong guess ${failures}` } });
      if (res.status() === 429) {
        throttled++;
        skippedMs += Number(res.headers()['retry-after']) * 1000;
      } else {
        expect(res.status()).toBe(401);
        failures++;
      }
    }
    expect(throttled).toBeGreaterThanOrEqual(8);
    // After 14 failures the wait is 2^9 = 512 seconds.
    await page.goto('/login');
    await page.getByLabel('Email or username').fill('tess');
    await page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'Too many attempts.' });
    await alert.waitFor();
    const seconds = Number(/Wait (\d+) seconds? and try again\./.exec(await alert.innerText())?.[1]);
    expect(seconds).toBeGreaterThan(480);
    expect(seconds).toBeLessThanOrEqual(512);
    await context.close();
  });

  it('signs in with the keyboard alone, with a visible focus ring on each control', async () => {
    await addUser(app.ctx, { email: 'kay@example.com', name: 'Kay Keys' });
    const { context, page } = await openPage(browser, app.baseUrl);
    await page.goto('/login');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();

    const login = page.getByLabel('Email or username');
    const password = page.getByLabel('Password', { exact: true });
    const toggle = page.getByRole('button', { name: 'Show password' });
    const submit = page.getByRole('button', { name: 'Sign in' });

    await page.keyboard.press('Tab');
    expect(await isFocused(page, login)).toBe(true);
    await page.keyboard.type('kay@example.com');
    await page.keyboard.press('Tab');
    expect(await isFocused(page, password)).toBe(true);
    await page.keyboard.type(STRONG_PASSWORD);
    await page.keyboard.press('Tab');
    expect(await isFocused(page, toggle)).toBe(true);
    await page.keyboard.press('Tab');
    expect(await isFocused(page, submit)).toBe(true);
    const ring = await submit.evaluate((el) => {
      const style = getComputedStyle(el);
      return { style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    expect(ring.style).toBe('solid');
    expect(ring.width).toBeGreaterThanOrEqual(2);

    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Welcome, Kay Keys' }).waitFor();
    expect(pathOf(page)).toBe('/');
    // Focus moved to the new page's heading, so the next Tab starts from the page content.
    expect(await becomesFocused(page, page.getByRole('heading', { level: 1 }))).toBe(true);
    await context.close();
  });
  it('says how long to wait when the server is too busy to check a password (503 overloaded with Retry-After)', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    // The hash queue is full only under real load; the answer is the documented one.
    await page.route('**/api/auth/login', (route) =>
      route.fulfill({
        status: 503,
        headers: { 'retry-after': '7' },
        contentType: 'application/json',
        body: JSON.stringify({ error: 'overloaded', message: 'The server is busy. Try again in a few seconds.' }),
      }),
    );
    await page.goto('/login');
    await submitSignIn(page, 'anyone');
    const alert = page.getByRole('alert').filter({ hasText: /\S/ });
    await alert.waitFor();
    expect(await alert.innerText()).toBe('The server is busy. Wait 7 seconds and try again.');
    expect(await alert.getByRole('link').count()).toBe(0);
    await context.close();
  });

  it('locks an account after 100 failed sign-ins for every browser except one that signed in to it before', async () => {
    const lou = await addUser(app.ctx, { username: 'lou', name: 'Lou Lockout' });

    // Lou signs in on their own browser, which keeps its device cookie after signing out.
    const own = await openPage(browser, app.baseUrl);
    await own.page.goto('/login');
    await submitSignIn(own.page, 'lou');
    await own.page.getByRole('heading', { name: 'Welcome, Lou Lockout' }).waitFor();
    await own.page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await own.page.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await cookieNames(own.context)).toEqual(['gatehouse_device']);

    // Someone else guesses from another browser; the limiter's clock skips each growing wait.
    const guesser = await openPage(browser, app.baseUrl);
    let failures = 0;
    while (failures < MAX_CONSECUTIVE_LOGIN_FAILURES) {
      const res = await guesser.page.request.post('/api/auth/login', { data: { login: 'lou', password: `guess number ${failures}` } });
      if (res.status() === 429) {
        skippedMs += Number(res.headers()['retry-after']) * 1000;
      } else {
        expect(res.status()).toBe(401);
        failures++;
      }
    }
    const row = await app.ctx.db.selectFrom('users').select(['locked_at', 'failed_login_count']).where('id', '=', lou.id).executeTakeFirstOrThrow();
    expect(row.locked_at).not.toBeNull();
    expect(row.failed_login_count).toBe(MAX_CONSECUTIVE_LOGIN_FAILURES);
    await guesser.context.close();

    // A fresh browser, even with the right password, is refused with the way back in next to the reason.
    const fresh = await openPage(browser, app.baseUrl);
    await fresh.page.goto('/login');
    await submitSignIn(fresh.page, 'lou');
    const alert = fresh.page.getByRole('alert').filter({ hasText: /\S/ });
    await alert.waitFor();
    expect(await alert.innerText()).toBe(`${LOCKED_MESSAGE} Forgot password?`);
    expect(await alert.getByRole('link', { name: 'Forgot password?' }).getAttribute('href')).toBe('/forgot-password');
    expect(pathOf(fresh.page)).toBe('/login');
    expect(await cookieNames(fresh.context)).toEqual([]);
    await expectNoAxeViolations(fresh.page);
    // A wrong password gets the very same answer: the lock tells a guesser nothing more.
    const wrong = await fresh.page.request.post('/api/auth/login', { data: { login: 'lou', password: 'one more guess' } });
    expect([wrong.status(), (await wrong.json()).message]).toEqual([403, LOCKED_MESSAGE]);

    // Lou's own browser still signs in.
    await submitSignIn(own.page, 'lou');
    await own.page.getByRole('heading', { name: 'Welcome, Lou Lockout' }).waitFor();
    expect(await cookieNames(own.context)).toEqual(['gatehouse_device', 'gatehouse_session']);
    for (const r of [own.record, fresh.record]) expect(r.pageErrors).toEqual([]);
    await own.context.close();
    await fresh.context.close();
  }, 90_000); // 100 real argon2id sign-ins through the browser: slow on a busy 2-core machine

  it('signs out everywhere from one browser, and the other browser’s next page load lands on the sign-in page', async () => {
    await addUser(app.ctx, { email: 'sam@example.com', name: 'Sam Sessions' });
    const laptop = await openPage(browser, app.baseUrl);
    const phone = await openPage(browser, app.baseUrl);
    for (const { page } of [laptop, phone]) {
      expect((await page.request.post('/api/auth/login', { data: { login: 'sam@example.com', password: STRONG_PASSWORD } })).status()).toBe(200);
      await page.goto('/');
      await page.getByRole('heading', { name: 'Welcome, Sam Sessions' }).waitFor();
    }

    const sessions = laptop.page.getByRole('region', { name: 'Your sessions' });
    await sessions.waitFor();
    await expectNoAxeViolations(laptop.page);
    await sessions.getByRole('button', { name: 'Sign out everywhere' }).click();
    await laptop.page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    expect(pathOf(laptop.page)).toBe('/login');
    const notice = laptop.page.getByRole('status').filter({ hasText: /\S/ });
    expect(await notice.innerText()).toBe('You were signed out on every device.');
    expect(await cookieNames(laptop.context)).toEqual(['gatehouse_device']);
    await expectNoAxeViolations(laptop.page);

    // The phone still shows the home page it loaded; its next page load finds the session gone.
    expect(pathOf(phone.page)).toBe('/');
    await phone.page.goto('/');
    await phone.page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor({ timeout: 5000 });
    expect(pathOf(phone.page)).toBe('/login');
    expect(await phone.page.getByRole('status').filter({ hasText: /\S/ }).count()).toBe(0);
    expect((await phone.page.request.get('/api/auth/me')).status()).toBe(401);

    // The notice was said once: a reload of the sign-in page does not repeat it, and signing in works as before.
    await laptop.page.reload();
    await laptop.page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    expect(await laptop.page.getByRole('status').filter({ hasText: /\S/ }).count()).toBe(0);
    await submitSignIn(laptop.page, 'sam@example.com');
    await laptop.page.getByRole('heading', { name: 'Welcome, Sam Sessions' }).waitFor();
    for (const r of [laptop.record, phone.record]) {
      expect(r.pageErrors).toEqual([]);
      expect(r.cspViolations).toEqual([]);
    }
    await laptop.context.close();
    await phone.context.close();
  });

  it('keeps working after a password change, and ten wrong current passwords in a row end the session on the sign-in page', async () => {
    const cora = await addUser(app.ctx, { username: 'cora', name: 'Cora Change' });
    const { context, page, record } = await openPage(browser, app.baseUrl);
    const other = await openPage(browser, app.baseUrl);
    for (const p of [page, other.page]) expect((await p.request.post('/api/auth/login', { data: { login: 'cora', password: STRONG_PASSWORD } })).status()).toBe(200);
    const sessionBefore = (await context.cookies()).find((c) => c.name === 'gatehouse_session')?.value;

    await page.goto('/');
    await page.getByRole('link', { name: 'Change your password' }).click();
    await page.getByRole('heading', { name: 'Change your password' }).waitFor();
    await page.getByLabel('Current password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByLabel('New password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await page.getByLabel('Confirm new password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('heading', { name: 'Welcome, Cora Change' }).waitFor();
    // The server rotated the session id; the page goes on with the new cookie.
    const sessionAfter = (await context.cookies()).find((c) => c.name === 'gatehouse_session')?.value;
    expect(sessionAfter).toBeDefined();
    expect(sessionAfter).not.toBe(sessionBefore);
    await page.reload();
    await page.getByRole('heading', { name: 'Welcome, Cora Change' }).waitFor();
    await page.getByRole('link', { name: 'Change your password' }).click();
    await page.getByRole('heading', { name: 'Change your password' }).waitFor();
    // Every other session ended.
    await other.page.goto('/');
    await other.page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    await other.context.close();

    // Nine wrong current passwords through the API (the growing waits skipped), the tenth on the page.
    let misses = 0;
    while (misses < 9) {
      const res = await page.request.post('/api/auth/change-password', { data: { currentPassword: `wrong ${misses}`, newPassword: 'a brand new passphrase here' } });
      if (res.status() === 429) {
        skippedMs += Number(res.headers()['retry-after']) * 1000;
      } else {
        expect(res.status()).toBe(400);
        misses++;
      }
    }
    skippedMs += failureDelaySeconds(misses) * 1000;
    await page.getByLabel('Current password', { exact: true }).fill('still not it');
    await page.getByLabel('New password', { exact: true }).fill('a brand new passphrase here');
    await page.getByLabel('Confirm new password', { exact: true }).fill('a brand new passphrase here');
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    expect(pathOf(page)).toBe('/login?next=%2Fchange-password');
    await page.getByRole('status').filter({ hasText: 'Too many wrong passwords: you were signed out. Sign in again.' }).waitFor({ timeout: 5000 });
    await expectNoAxeViolations(page);
    expect((await page.request.get('/api/auth/me')).status()).toBe(401);
    expect(await app.ctx.db.selectFrom('sessions').select('token_hash').where('user_id', '=', cora.id).execute()).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    await context.close();
  });
});
