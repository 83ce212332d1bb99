import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { insertUser } from '../../src/accounts/users-repo.js';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, becomesFocused, describeInBrowser, launchBrowser, openPage, startWebApp, type RunningApp } from '../helpers/browser.js';

// The Users page: your own row, search and filters, paging, and a table that fits its card at
// 1280 px and turns into one block per user at 390 px — in real Chromium, with axe in each state.

const BULK = 60;
const PAGE_SIZE = 50;
const LONG_EMAIL = 'maximiliana.alexandrovna.konstantinopolous-featherstonehaugh@departments.example-company.com';
const LONG_NAME = 'Maximiliana Alexandrovna Konstantinopolous-Featherstonehaugh';

describeInBrowser('the Users page in Chromium', () => {
  let app: RunningApp;
  let browser: Browser;
  let everyone = 0;

  beforeAll(async () => {
    [app, browser] = await Promise.all([startWebApp(), launchBrowser()]);
    await addUser(app.ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' });
    await addUser(app.ctx, { username: 'carl', email: 'carl@example.com', name: 'Carl Chief', role: 'system-admin' });
    await addUser(app.ctx, { email: 'uma@example.com', name: 'Uma User' });
    const dan = await addUser(app.ctx, { email: 'dan@example.com', name: 'Dan Disabled' });
    await app.ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', dan.id).execute();
    const lena = await addUser(app.ctx, { username: 'lena', email: 'lena@example.com', name: 'Lena Lund' });
    await app.ctx.db.updateTable('users').set({ failed_login_count: 100, locked_at: Date.now() }).where('id', '=', lena.id).execute();
    await addUser(app.ctx, { username: 'maxi_featherstonehaugh_the_third', email: LONG_EMAIL, name: LONG_NAME });
    // Many more, straight into the table (no password hashing): "Person 01" … "Person 60".
    for (let i = 1; i <= BULK; i++) {
      const n = String(i).padStart(2, '0');
      await insertUser(app.ctx.db, {
        id: `bulk-${n}`,
        email: `person${n}@bulk.example`,
        username: null,
        name: `Person ${n}`,
        role: 'user',
        passwordHash: null,
        mustChangePassword: false,
        nowMs: Date.now(),
      });
    }
    everyone = 6 + BULK;
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function usersPage(viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page; record: Awaited<ReturnType<typeof openPage>>['record'] }> {
    const opened = await openPage(browser, app.baseUrl);
    await opened.page.setViewportSize(viewport);
    expect((await opened.page.request.post('/api/auth/login', { data: { login: 'root', password: STRONG_PASSWORD } })).status()).toBe(200);
    await opened.page.goto('/users');
    await opened.page.getByRole('heading', { name: 'Users', level: 1 }).waitFor();
    await opened.page.getByRole('table').getByRole('rowheader').first().waitFor();
    return opened;
  }

  const summary = (page: Page) => page.locator('.users-summary');
  const rowNames = async (page: Page) => (await page.getByRole('table').getByRole('rowheader').allInnerTexts()).map((t) => t.trim());

  async function expectClean(page: Page, what: string): Promise<void> {
    expect(await axeViolations(page), what).toEqual([]);
    expect(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), what).toBeLessThanOrEqual(0);
  }

  it('says which row is you, and offers no Delete, role change or disable there — the server refuses them too', { timeout: 90_000 }, async () => {
    const { context, page, record } = await usersPage();
    const table = page.getByRole('table');
    await page.getByLabel('Filter by role').selectOption({ label: 'System admin' });
    await expect.poll(() => rowNames(page)).toEqual(['Carl Chief', 'Rita Root (you)']);
    const mine = table.getByRole('row', { name: /Rita Root/ });
    expect(await mine.getByRole('rowheader').innerText()).toBe('Rita Root (you)');
    expect(await table.getByRole('button', { name: 'Delete Rita Root' }).count()).toBe(0);
    expect(await mine.getByRole('button', { name: /Delete/ }).count()).toBe(0);
    // Other admins keep their Delete.
    expect(await table.getByRole('button', { name: 'Delete Carl Chief' }).count()).toBe(1);
    await expectClean(page, 'own row');

    await mine.getByRole('button', { name: 'Edit Rita Root (you)' }).click();
    const dialog = page.getByRole('dialog', { name: 'Edit Rita Root' });
    await dialog.waitFor();
    await dialog.getByText('This is your own account: you cannot change your role or disable it.').waitFor();
    expect(await dialog.getByLabel('Role').count()).toBe(0);
    expect(await dialog.getByLabel('Disabled').count()).toBe(0);
    expect(await axeViolations(page)).toEqual([]);
    // Renaming yourself still works.
    await dialog.getByLabel('Name', { exact: true }).fill('Rita R. Root');
    await dialog.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved changes to Rita R. Root.' }).waitFor();
    expect(await table.getByRole('rowheader', { name: /Rita R\. Root/ }).innerText()).toBe('Rita R. Root (you)');

    // Whatever the page offers, the server refuses it by name.
    const me = (await (await page.request.get('/api/auth/me')).json()).user.id as string;
    const del = await page.request.delete(`/api/users/${me}`);
    expect(del.status()).toBe(409);
    expect((await del.json()).error).toBe('cannot_delete_self');
    const demote = await page.request.patch(`/api/users/${me}`, { data: { role: 'user' } });
    expect((await demote.json()).error).toBe('cannot_demote_self');
    await page.request.patch(`/api/users/${me}`, { data: { name: 'Rita Root' } });
    expect(record.pageErrors).toEqual([]);
    await context.close();
  });

  it('narrows the table with the search box and the role and status filters, from the keyboard', { timeout: 90_000 }, async () => {
    const { context, page } = await usersPage();
    await summary(page).filter({ hasText: `Showing ${PAGE_SIZE} of ${everyone} users.` }).waitFor();

    // Search: type, and the table follows after a pause; Enter runs it at once.
    const search = page.getByLabel('Search users');
    await search.focus();
    await page.keyboard.type('UMA@');
    await summary(page).filter({ hasText: 'Showing 1 of 1 user that match.' }).waitFor();
    expect(await rowNames(page)).toEqual(['Uma User']);
    await expectClean(page, 'search uma');

    await search.fill('lena');
    await page.keyboard.press('Enter');
    await expect.poll(() => rowNames(page)).toEqual(['Lena Lund']);
    await summary(page).filter({ hasText: 'Showing 1 of 1 user that match.' }).waitFor();
    await search.fill('nobody-at-all');
    await page.keyboard.press('Enter');
    await summary(page).filter({ hasText: 'No user matches.' }).waitFor();
    expect(await page.getByRole('table').count()).toBe(0);
    await expectClean(page, 'no match');
    await search.fill('');
    await page.keyboard.press('Enter');

    // Role.
    await page.getByLabel('Filter by role').selectOption({ label: 'System admin' });
    await summary(page).filter({ hasText: 'Showing 2 of 2 users that match.' }).waitFor();
    expect(await rowNames(page)).toEqual(['Carl Chief', 'Rita Root (you)']);
    await expectClean(page, 'admins');

    // Status: the locked account, with its Unlock button.
    await page.getByLabel('Filter by role').selectOption({ label: 'All roles' });
    await page.getByLabel('Filter by status').selectOption({ label: 'Locked' });
    await expect.poll(() => rowNames(page)).toEqual(['Lena Lund']);
    await summary(page).filter({ hasText: 'Showing 1 of 1 user that match.' }).waitFor();
    const unlock = page.getByRole('button', { name: 'Unlock Lena Lund' });
    expect(await page.getByRole('table').getByRole('row', { name: /Lena Lund/ }).innerText()).toMatch(/Locked/);
    await expectClean(page, 'locked');
    await unlock.focus();
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Unlocked Lena Lund. They can sign in again.' }).waitFor();
    expect(await becomesFocused(page, page.getByRole('button', { name: 'Send reset link to Lena Lund' }))).toBe(true);

    await page.getByLabel('Filter by status').selectOption({ label: 'Disabled' });
    await expect.poll(() => rowNames(page)).toEqual(['Dan Disabled']);

    // Combined: a search within a status.
    await page.getByLabel('Filter by status').selectOption({ label: 'No password yet' });
    await summary(page).filter({ hasText: `Showing ${PAGE_SIZE} of ${BULK} users that match.` }).waitFor();
    await search.fill('person 0');
    await page.keyboard.press('Enter');
    await summary(page).filter({ hasText: 'Showing 9 of 9 users that match.' }).waitFor();
    expect(await rowNames(page)).toEqual(Array.from({ length: 9 }, (_, i) => `Person 0${i + 1}`));
    await expectClean(page, 'combined');

    // A status chosen while the search waits for a pause in typing stays chosen when the search runs.
    await search.fill('person 1');
    await page.getByLabel('Filter by status').selectOption({ label: 'Disabled' });
    await summary(page).filter({ hasText: 'No user matches.' }).waitFor();
    await page.waitForTimeout(1_000);
    expect(await summary(page).innerText()).toBe('No user matches.');
    expect(await page.getByRole('table').count()).toBe(0);
    await context.close();
  });

  it(`pages ${BULK}+ users by name with Load more, each user once`, { timeout: 90_000 }, async () => {
    const { context, page } = await usersPage();
    await summary(page).filter({ hasText: `Showing ${PAGE_SIZE} of ${everyone} users.` }).waitFor();
    const first = await rowNames(page);
    expect(first).toHaveLength(PAGE_SIZE);
    expect(first.slice(0, 3)).toEqual(['Carl Chief', 'Dan Disabled', 'Lena Lund']);
    const more = page.getByRole('button', { name: 'Load more' });
    await more.focus();
    await page.keyboard.press('Enter');
    await summary(page).filter({ hasText: `Showing ${everyone} of ${everyone} users.` }).waitFor();
    const all = await rowNames(page);
    expect(all).toHaveLength(everyone);
    expect(new Set(all).size).toBe(everyone);
    expect(all.at(-1)).toBe('Uma User');
    expect([...all].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()))).toEqual(all);
    expect(await becomesFocused(page, page.getByText('That is every user.'))).toBe(true);
    expect(await more.count()).toBe(0);
    await expectClean(page, 'all pages');
    await context.close();
  });

  it('fits the table in its card at 1280 px, long values wrapping with the full text kept', { timeout: 90_000 }, async () => {
    const { context, page } = await usersPage();
    await page.getByLabel('Search users').fill('e');
    await page.keyboard.press('Enter');
    await page.getByRole('table').getByRole('rowheader', { name: /Maximiliana/ }).waitFor();
    const card = await page.locator('section.card', { has: page.getByRole('table') }).boundingBox();
    expect(card).not.toBeNull();
    // Every button of the last column, measured in one go: each lies wholly inside the card.
    const boxes = await page
      .getByRole('table')
      .locator('.table-actions button')
      .evaluateAll((els) => els.map((el) => ({ label: el.getAttribute('aria-label'), ...el.getBoundingClientRect().toJSON() }) as { label: string; left: number; right: number }));
    expect(boxes.length).toBeGreaterThan(10);
    const outside = boxes.filter((b) => b.left < card!.x || b.right > card!.x + card!.width).map((b) => b.label);
    expect(outside).toEqual([]);
    const widest = Math.max(...boxes.map((b) => b.right));
    expect(widest).toBeLessThanOrEqual(card!.x + card!.width);
    // The table needs no scrolling of its own: it is as wide as its box at most.
    const scroller = await page.locator('.table-scroll').evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth }));
    expect(scroller.scroll).toBeLessThanOrEqual(scroller.client);
    // The long email and name wrap inside their cells, whole, and say themselves in a title too.
    const row = page.getByRole('row', { name: /Maximiliana/ });
    expect(await row.getByRole('cell', { name: LONG_EMAIL }).getAttribute('title')).toBe(LONG_EMAIL);
    expect(await row.getByRole('rowheader').getAttribute('title')).toBe(LONG_NAME);
    expect((await row.innerText()).replace(/\s+/g, '')).toContain(LONG_EMAIL);
    await expectClean(page, 'long values at 1280');
    await context.close();
  });

  it('shows one block per user at 390 px, with no sideways scroll', { timeout: 90_000 }, async () => {
    const { context, page } = await usersPage({ width: 390, height: 844 });
    await page.getByLabel('Search users').fill('maxi');
    await page.keyboard.press('Enter');
    await expect.poll(() => rowNames(page)).toEqual([LONG_NAME]);
    const row = page.getByRole('row', { name: /Maximiliana/ });
    expect(await row.evaluate((el) => getComputedStyle(el).display)).toBe('block');
    const rowBox = (await row.boundingBox())!;
    expect(rowBox.x + rowBox.width).toBeLessThanOrEqual(390);
    for (const name of [`Send reset link to ${LONG_NAME}`, `Edit ${LONG_NAME}`, `Delete ${LONG_NAME}`]) {
      const box = (await page.getByRole('button', { name }).boundingBox())!;
      expect(box.x, name).toBeGreaterThanOrEqual(rowBox.x);
      expect(box.x + box.width, name).toBeLessThanOrEqual(rowBox.x + rowBox.width);
    }
    // Each value says what it is.
    expect(await row.getByRole('cell', { name: LONG_EMAIL }).evaluate((el) => getComputedStyle(el, '::before').content)).toBe('"Email: "');
    await expectClean(page, 'one user at 390');
    await page.getByLabel('Search users').fill('');
    await page.keyboard.press('Enter');
    await summary(page).filter({ hasText: `Showing ${PAGE_SIZE} of ${everyone} users.` }).waitFor();
    await expectClean(page, 'everyone at 390');
    await context.close();
  });
});
