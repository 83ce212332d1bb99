import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordAudit } from '../../src/audit/audit.js';
import { systemClock } from '../../src/clock.js';
import { enqueueDelivery } from '../../src/mail/outbox.js';
import { cryptoRandom } from '../../src/random.js';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, becomesFocused, describeInBrowser, launchBrowser, openPage, startWebApp, type RunningApp } from '../helpers/browser.js';

// The pages ask for 50 at a time.
const PAGE_SIZE = 50;

describeInBrowser('the Mail, Audit and Users admin pages in Chromium', () => {
  let app: RunningApp;
  let browser: Browser;

  beforeAll(async () => {
    [app, browser] = await Promise.all([startWebApp(), launchBrowser()]);
    await addUser(app.ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' });
    await addUser(app.ctx, { email: 'uma@example.com', name: 'Uma User' });
    await addUser(app.ctx, { username: 'nomail', name: 'Nora Nomail' });
    const dan = await addUser(app.ctx, { email: 'dan@example.com', name: 'Dan Disabled' });
    await app.ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', dan.id).execute();
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function signedInAdmin(): Promise<{ context: BrowserContext; page: Page; record: Awaited<ReturnType<typeof openPage>>['record'] }> {
    const opened = await openPage(browser, app.baseUrl);
    const res = await opened.page.request.post('/api/auth/login', { data: { login: 'root', password: STRONG_PASSWORD } });
    expect(res.status()).toBe(200);
    return opened;
  }

  async function expectAccessible(page: Page, title: string): Promise<void> {
    await expect.poll(() => page.title()).toBe(`${title} · Gatehouse`);
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
  }

  /** The visible text of each body row of the page's table. */
  async function rows(page: Page): Promise<string[]> {
    const texts = await page.getByRole('table').getByRole('row').allInnerTexts();
    return texts.slice(1).map((t) => t.replace(/\s+/g, ' ').trim());
  }

  it('lists the delivery of a forgot-password request, and after Refresh a failed attempt with its error', async () => {
    // Someone signed out asks for a reset.
    const visitor = await openPage(browser, app.baseUrl);
    await visitor.page.goto('/forgot-password');
    await visitor.page.getByLabel('Email', { exact: true }).fill('uma@example.com');
    await visitor.page.getByRole('button', { name: 'Send reset link' }).click();
    await visitor.page.getByRole('status').filter({ hasText: 'If an account uses uma@example.com' }).waitFor();
    await visitor.context.close();
    await app.ctx.outbox.drain();
    expect(app.ctx.mailer.sent.map((m) => m.to)).toContain('uma@example.com');

    const { context, page, record } = await signedInAdmin();
    await page.goto('/');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Mail' }).click();
    await page.getByRole('heading', { name: 'Mail deliveries', level: 1 }).waitFor();
    await page.getByRole('table').waitFor();
    const [first] = await rows(page);
    expect(first).toMatch(/uma@example\.com Password reset Sent (?:.+ )?1 none$/);
    await expectAccessible(page, 'Mail deliveries');

    // The SMTP server is down for the next one: the row says so after a refresh.
    app.ctx.mailer.fail = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:25'), { code: 'ECONNREFUSED' });
    try {
      expect((await page.request.post('/api/auth/forgot-password', { data: { email: 'uma@example.com' } })).status()).toBe(202);
      await app.ctx.outbox.drain();
    } finally {
      app.ctx.mailer.fail = undefined;
    }
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('status').filter({ hasText: 'Refreshed' }).waitFor();
    const [newest, older] = await rows(page);
    expect(newest).toMatch(/uma@example\.com Password reset Retrying (?:.+ )?1 \S.*ECONNREFUSED/);
    expect(older).toMatch(/Sent (?:.+ )?1 none$/);
    expect(record.cspViolations).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    await context.close();
  });

  it('pages deliveries newest first with Load more', async () => {
    const startMs = Date.now() - 3_600_000;
    for (let i = 0; i < PAGE_SIZE + 5; i++) {
      await enqueueDelivery(app.ctx.db, cryptoRandom, { kind: 'password_changed', userId: null, toAddress: `bulk${i}@example.com`, nowMs: startMs + i, notAfterMs: null });
    }
    const { context, page } = await signedInAdmin();
    await page.goto('/mail');
    await page.getByRole('table').waitFor();
    const total = (await page.request.get('/api/mail/deliveries?limit=200').then((r) => r.json())).deliveries.length as number;
    expect(await rows(page)).toHaveLength(PAGE_SIZE);
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.getByRole('status').filter({ hasText: `Loaded ${total - PAGE_SIZE} more deliveries.` }).waitFor();
    const all = await rows(page);
    expect(all).toHaveLength(total);
    expect(all.at(-1)).toContain('bulk0@example.com');
    expect(all.filter((r) => r.includes('bulk54@example.com'))).toHaveLength(1);
    // The button is gone; focus moved to the sentence that replaced it.
    expect(await becomesFocused(page, page.getByText('That is the oldest delivery.'))).toBe(true);
    expect(await page.getByRole('button', { name: 'Load more' }).count()).toBe(0);
    await context.close();
  });

  it('shows audit events newest first, summarises their detail, and loads older ones', async () => {
    const { context, page } = await signedInAdmin();
    for (let i = 0; i < PAGE_SIZE + 10; i++) {
      await recordAudit(app.ctx.db, systemClock, {
        type: 'login_failed',
        ip: '203.0.113.7',
        outcome: 'failure',
        detail: { login: `guess${i}`, attempt: { n: i, locked: false } },
      });
    }
    await page.goto('/');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit' }).click();
    await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
    await page.getByRole('table').waitFor();
    const firstPage = await rows(page);
    expect(firstPage).toHaveLength(PAGE_SIZE);
    expect(firstPage[0]).toMatch(/Sign-in failed login_failed none none 203\.0\.113\.7 Failure login: guess59 · attempt: n=59, locked=false$/);
    await expectAccessible(page, 'Audit log');

    await page.getByRole('button', { name: 'Load more' }).click();
    await page.getByRole('status').filter({ hasText: /Loaded \d+ more events\./ }).waitFor();
    const all = await rows(page);
    expect(all.length).toBeGreaterThan(PAGE_SIZE);
    // The older events are the real ones, before the inserted failures: the admin's sign-in among them.
    expect(all.slice(PAGE_SIZE).some((r) => /Sign-in succeeded login_succeeded root none \S+ Success/.test(r))).toBe(true);
    expect(all.filter((r) => r.includes('guess0'))).toHaveLength(1);
    if (all.length < 2 * PAGE_SIZE) expect(await page.getByText('That is the oldest event.').count()).toBe(1);
    await expectAccessible(page, 'Audit log');
    await context.close();
  });

  it('sends a reset link from the users page, says clearly why it cannot for a user without email or a disabled one, and creates a user who sets their own password', async () => {
    const { context, page } = await signedInAdmin();
    await page.goto('/users');
    const table = page.getByRole('table');
    await table.getByRole('rowheader', { name: 'Uma User' }).waitFor();

    await table.getByRole('button', { name: 'Send reset link to Uma User' }).click();
    await page.getByRole('status').filter({ hasText: 'Reset link sent to uma@example.com.' }).waitFor();

    await table.getByRole('button', { name: 'Send reset link to Nora Nomail' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'No reset link was sent' });
    await alert.waitFor();
    expect(await alert.innerText()).toBe('No reset link was sent: Nora Nomail has no email address. Edit the user to add one, then send the link.');
    expect(await page.getByRole('status').filter({ hasText: 'Reset link sent' }).count()).toBe(0);
    await expectAccessible(page, 'Users');

    await table.getByRole('button', { name: 'Send reset link to Dan Disabled' }).click();
    await page.getByRole('alert').filter({ hasText: 'Dan Disabled is disabled. Enable the account first' }).waitFor();

    // Without a password and without an email, the form says what is missing before asking the server.
    await page.getByLabel('Username', { exact: true }).fill('pat');
    await page.getByLabel('Name', { exact: true }).fill('Pat Nopass');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByText('Give an initial password, or an email so they can set their own.').waitFor();
    expect(await page.getByLabel('Initial password (optional)', { exact: true }).getAttribute('aria-invalid')).toBe('true');

    // With an email it is created, and they get a set-password email.
    await page.getByLabel('Email', { exact: true }).fill('pat@example.com');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('status').filter({ hasText: 'Added Pat Nopass. They will get an email to set their password.' }).waitFor();
    const patRow = table.getByRole('row', { name: /Pat Nopass/ });
    expect(await patRow.innerText()).toContain('No password yet');

    await app.ctx.outbox.drain();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Mail' }).click();
    await page.getByRole('table').waitFor();
    const list = await rows(page);
    expect(list[0]).toMatch(/pat@example\.com Set password \(new user\) Sent (?:.+ )?1 none$/);
    expect(list[1]).toMatch(/uma@example\.com Password reset Sent (?:.+ )?1 none$/);
    await context.close();
  });

  it('keeps the admin pages from plain users, and fits a phone screen', async () => {
    const { context, page } = await signedInAdmin();
    await page.setViewportSize({ width: 360, height: 740 });
    for (const [path, heading] of [
      ['/mail', 'Mail deliveries'],
      ['/audit', 'Audit log'],
      ['/users', 'Users'],
    ] as const) {
      await page.goto(path);
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      await page.getByRole('table').waitFor();
      expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), path).toBeLessThanOrEqual(0);
    }
    await context.close();

    const uma = await openPage(browser, app.baseUrl);
    await addUser(app.ctx, { email: 'plain@example.com', name: 'Plain Person' });
    expect((await uma.page.request.post('/api/auth/login', { data: { login: 'plain@example.com', password: STRONG_PASSWORD } })).status()).toBe(200);
    await uma.page.goto('/');
    await uma.page.getByRole('heading', { name: 'Welcome, Plain Person' }).waitFor();
    expect(await uma.page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts()).toEqual(['Home']);
    for (const path of ['/settings', '/mail', '/audit']) {
      await uma.page.goto(path);
      await uma.page.getByRole('heading', { name: 'You do not have access' }).waitFor();
    }
    expect(uma.record.requests.filter((url) => /\/assets\/(?:users|settings|mail|audit)-[\w-]+\.js$/.test(url))).toEqual([]);
    await uma.context.close();
  });

  it('tells a locked account how to get back in, shows it as Locked on the users page, and unlocks it with one button', async () => {
    const lena = await addUser(app.ctx, { username: 'lena', email: 'lena@example.com', name: 'Lena Lund' });
    // What 100 failed sign-ins from untrusted browsers leave on the account (sign-in.test.ts makes them for real).
    await app.ctx.db.updateTable('users').set({ failed_login_count: 100, locked_at: Date.now() }).where('id', '=', lena.id).execute();

    // A browser that never signed in to the account is refused with the server's words and the way out.
    const visitor = await openPage(browser, app.baseUrl);
    await visitor.page.goto('/login');
    await visitor.page.getByLabel('Email or username').fill('lena');
    await visitor.page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await visitor.page.getByRole('button', { name: 'Sign in' }).click();
    const refused = visitor.page.getByRole('alert').filter({ hasText: /\S/ });
    await refused.waitFor();
    expect(await refused.innerText()).toBe('Too many failed sign-ins — reset your password, or ask an admin. Forgot password?');
    expect(visitor.record.requests.filter((url) => url.endsWith('/api/auth/login'))).toHaveLength(1);
    await expectAccessible(visitor.page, 'Sign in');
    await refused.getByRole('link', { name: 'Forgot password?' }).click();
    await visitor.page.getByRole('heading', { name: 'Forgot your password?', level: 1 }).waitFor();

    const { context, page, record } = await signedInAdmin();
    await page.goto('/users');
    const table = page.getByRole('table');
    const lenaRow = table.getByRole('row', { name: /Lena Lund/ });
    await lenaRow.waitFor();
    expect(await lenaRow.innerText()).toMatch(/lena@example\.com\s+lena\s+User\s+Locked\s/);
    // Only the locked account says Locked and offers Unlock.
    expect(await table.getByRole('row').filter({ hasText: 'Locked' }).count()).toBe(1);
    expect(await table.getByRole('button', { name: /^Unlock / }).count()).toBe(1);
    expect(await table.getByRole('row', { name: /Uma User/ }).innerText()).toMatch(/User\s+Active/);
    await expectAccessible(page, 'Users');

    const unlock = table.getByRole('button', { name: 'Unlock Lena Lund' });
    expect(await unlock.innerText()).toBe('Unlock');
    await unlock.click();
    await page.getByRole('status').filter({ hasText: 'Unlocked Lena Lund. They can sign in again.' }).waitFor();
    expect(await lenaRow.innerText()).toMatch(/lena@example\.com\s+lena\s+User\s+Active/);
    expect(await lenaRow.innerText()).not.toContain('Locked');
    expect(await table.getByRole('button', { name: /^Unlock / }).count()).toBe(0);
    // Its button is gone; focus stayed in the row rather than falling back to the page's start.
    expect(await becomesFocused(page, table.getByRole('button', { name: 'Send reset link to Lena Lund' }))).toBe(true);
    await expectAccessible(page, 'Users');

    // The server did it, and audited who did.
    const row = await app.ctx.db.selectFrom('users').select(['locked_at', 'failed_login_count']).where('id', '=', lena.id).executeTakeFirstOrThrow();
    expect(row).toEqual({ locked_at: null, failed_login_count: 0 });
    const audit = await app.ctx.db.selectFrom('audit_events').selectAll().where('type', '=', 'account_unlocked').execute();
    expect(audit.map((e) => [e.actor_label, e.target_label, e.outcome])).toEqual([['root', 'lena', 'success']]);
    await page.reload();
    await lenaRow.waitFor();
    expect(await lenaRow.innerText()).not.toContain('Locked');
    expect(record.pageErrors).toEqual([]);
    await context.close();

    // The same browser that was refused now signs in.
    await visitor.page.goto('/login');
    await visitor.page.getByLabel('Email or username').fill('lena');
    await visitor.page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await visitor.page.getByRole('button', { name: 'Sign in' }).click();
    await visitor.page.getByRole('heading', { name: 'Welcome, Lena Lund' }).waitFor();
    expect(visitor.record.pageErrors).toEqual([]);
    await visitor.context.close();
  });
});
