import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, describeInBrowser, launchBrowser, pathOf, startWebApp, type RunningApp } from '../helpers/browser.js';

// Item 6 of issue 10: a plain user's "My account" page — details, name, and the sessions they have
// in two browsers, one signed out from the other.

const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';

describeInBrowser('My account in Chromium', () => {
  let app: RunningApp;
  let browser: Browser;

  beforeAll(async () => {
    [app, browser] = await Promise.all([startWebApp(), launchBrowser()]);
    await addUser(app.ctx, { username: 'uma', email: 'uma@example.com', name: 'Uma User' });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function signedIn(userAgent?: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ baseURL: app.baseUrl, viewport: { width: 1280, height: 800 }, ...(userAgent ? { userAgent } : {}) });
    const page = await context.newPage();
    page.setDefaultTimeout(8000);
    await page.goto('/login');
    await page.getByLabel('Email or username').fill('uma');
    await page.getByLabel('Password', { exact: true }).fill(STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1 }).filter({ hasText: 'Welcome' }).waitFor();
    return { context, page };
  }

  async function expectTidy(page: Page): Promise<void> {
    expect(await page.title()).toMatch(/^My account · /);
    expect(await page.getByRole('heading', { level: 1 }).count()).toBe(1);
    expect(await axeViolations(page)).toEqual([]);
    // Dark mode follows the system: the same page must pass there too.
    await page.emulateMedia({ colorScheme: 'dark' });
    expect(await axeViolations(page)).toEqual([]);
    await page.emulateMedia({ colorScheme: 'light' });
    for (const [width, height] of [
      [1280, 800],
      [390, 844],
    ] as const) {
      await page.setViewportSize({ width, height });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `sideways scroll at ${width} px`).toBeLessThanOrEqual(0);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  }

  /** Each session item's visible text, one line each. */
  async function sessionItems(page: Page): Promise<string[]> {
    const texts = await page.getByRole('list', { name: 'Your sessions' }).getByRole('listitem').allInnerTexts();
    return texts.map((t) => t.replace(/\s+/g, ' ').trim());
  }

  it('a plain user sees both their browsers, signs the other out, and changes their name', async () => {
    const other = await signedIn(FIREFOX_WINDOWS);
    const here = await signedIn();
    const { page } = here;

    await page.getByRole('link', { name: 'My account' }).click();
    await page.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
    expect(pathOf(page)).toBe('/account');
    const details = (await page.locator('dl.details').innerText()).replace(/\s+/g, ' ');
    expect(details).toContain('Name Uma User');
    expect(details).toContain('Email uma@example.com');
    expect(details).toContain('Username uma');
    expect(details).toContain('Role User');

    await page.getByRole('list', { name: 'Your sessions' }).waitFor();
    const items = await sessionItems(page);
    expect(items).toHaveLength(2);
    const mine = items.find((t) => t.includes('This browser'))!;
    expect(mine).toMatch(/^Chrome on Linux This browser Address 127\.0\.0\.1 · This device’s network Signed in \S.* Last seen \S.* Sign out$/);
    const theirs = items.find((t) => !t.includes('This browser'))!;
    expect(theirs).toMatch(/^Firefox on Windows Address 127\.0\.0\.1 · This device’s network Signed in \S.* Last seen \S.* Sign out$/);
    await expectTidy(page);

    // Sign the Firefox session out from here.
    await page.getByRole('button', { name: /^Sign out Firefox on Windows/ }).click();
    await page.getByRole('status').filter({ hasText: 'Signed out Firefox on Windows.' }).waitFor();
    await expect.poll(() => sessionItems(page)).toHaveLength(1);
    expect((await sessionItems(page))[0]).toContain('This browser');
    expect(await page.getByRole('button', { name: 'Sign out all other sessions' }).count()).toBe(0);
    await expectTidy(page);

    // The Firefox browser is sent to sign in on its next action.
    await other.page.getByRole('link', { name: 'My account' }).click();
    await other.page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    expect(pathOf(other.page)).toMatch(/^\/login/);

    // Change the name: the header shows it, also after a reload.
    await page.getByLabel('Name', { exact: true }).fill('');
    await page.getByRole('button', { name: 'Save name' }).click();
    await page.getByText('Enter your name.').waitFor();
    expect(await page.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    await expectTidy(page);
    await page.getByLabel('Name', { exact: true }).fill('  Uma Updated ');
    await page.getByRole('button', { name: 'Save name' }).click();
    await page.getByRole('status').filter({ hasText: 'Your name is now Uma Updated.' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
    expect(await page.locator('.site-user-name').innerText()).toContain('Uma Updated');
    expect((await page.locator('dl.details').innerText()).replace(/\s+/g, ' ')).toContain('Name Uma Updated');
    await other.context.close();
    await here.context.close();
  }, 90_000);

  it('signs out every other session at once, keeping this browser', async () => {
    const others = [await signedIn(FIREFOX_WINDOWS), await signedIn(FIREFOX_WINDOWS)];
    const here = await signedIn();
    const { page } = here;
    await page.goto('/account');
    await page.getByRole('list', { name: 'Your sessions' }).waitFor();
    expect((await sessionItems(page)).length).toBeGreaterThanOrEqual(3);
    await page.getByRole('button', { name: 'Sign out all other sessions' }).click();
    await page.getByRole('status').filter({ hasText: 'Signed out every other session.' }).waitFor();
    await expect.poll(() => sessionItems(page)).toHaveLength(1);
    await expectTidy(page);
    for (const other of others) {
      await other.page.reload();
      await other.page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
      await other.context.close();
    }
    // This browser is still signed in after a reload.
    await page.reload();
    await page.getByRole('heading', { name: 'My account', level: 1 }).waitFor();
    await here.context.close();
  }, 90_000);
});
