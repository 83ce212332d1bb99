import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { startDevInbox, type DevInbox } from '../../src/mail/dev-inbox.js';
import { cryptoRandom } from '../../src/random.js';
import { OTHER_STRONG_PASSWORD, STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, describeInBrowser, launchBrowser, openPage, pathOf, startWebApp, type RunningApp } from '../helpers/browser.js';

// A name that needs escaping in HTML (config refuses only < > and control characters).
const BRAND = 'Acme & "Partners" Portal';
const LOGO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><circle cx="4" cy="4" r="4" fill="#c2410c"/></svg>';
const LOGO = `data:image/svg+xml;base64,${Buffer.from(LOGO_SVG).toString('base64')}`;

const SIGNED_OUT_PAGES = [
  ['/login', 'Sign in'],
  ['/forgot-password', 'Forgot your password?'],
  ['/reset-password', 'Open the link from your email'],
] as const;

describeInBrowser('the product look in Chromium: brand, favicon, header, notices, console, widths, dark mode', () => {
  /** branded, with a dev mailbox */
  let app: RunningApp;
  /** no BRAND_* variables */
  let plain: RunningApp;
  let devInbox: DevInbox;
  let browser: Browser;

  beforeAll(async () => {
    devInbox = await startDevInbox({ clock: systemClock, random: cryptoRandom });
    [app, plain, browser] = await Promise.all([
      startWebApp({ deps: { devInbox }, mailer: devInbox.mailer, env: { BRAND_NAME: BRAND, BRAND_LOGO_URL: LOGO } }),
      startWebApp(),
      launchBrowser(),
    ]);
    await addUser(app.ctx, { email: 'bea@example.com', name: 'Bea Brand', role: 'system-admin' });
    await addUser(plain.ctx, { username: 'hana', name: 'Hana Header', role: 'system-admin' });
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await plain?.close();
    await devInbox?.close();
  });

  async function signIn(page: Page, login: string, password = STRONG_PASSWORD): Promise<void> {
    await page.getByLabel('Email or username').fill(login);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
  }

  async function expectBrandInHeader(page: Page): Promise<void> {
    const banner = page.getByRole('banner');
    await expect.poll(() => banner.innerText()).toContain(BRAND);
    const logo = banner.locator('img.brand-logo');
    expect(await logo.getAttribute('src')).toBe(LOGO);
    // Decoration next to the name: the name is the text, so the image has an empty alt.
    expect(await logo.getAttribute('alt')).toBe('');
    // The image loaded (the CSP allows data: images).
    expect(await logo.evaluate((img) => (img as HTMLImageElement).naturalWidth > 0)).toBe(true);
  }

  it('names the product and shows its logo on the login and home pages and in the reset email, and the new password’s notice on the login page', async () => {
    const { context, page, record } = await openPage(browser, app.baseUrl);
    await page.goto('/login');
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    await expectBrandInHeader(page);
    await expect.poll(() => page.title()).toBe(`Sign in · ${BRAND}`);
    // Written into the served page, escaped, so no request is needed to learn it.
    const served = await (await page.request.get('/login')).text();
    expect(served).toContain('<meta name="brand-name" content="Acme &amp; &quot;Partners&quot; Portal"');
    expect(served).toContain(`<title>Acme &amp; &quot;Partners&quot; Portal</title>`);
    expect(served).toContain(`<meta name="brand-logo" content="${LOGO}"`);

    // The reset email, read from the dev mailbox.
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await page.getByLabel('Email', { exact: true }).fill('bea@example.com');
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('status').filter({ hasText: 'If an account uses bea@example.com' }).waitFor();
    await expectBrandInHeader(page);
    await app.ctx.outbox.drain();
    const list = (await (await page.request.get('/api/dev/mailbox')).json()) as { messages: Array<{ id: string; subject: string }> };
    const mail = list.messages.find((m) => m.subject === 'Reset your password');
    expect(mail).toBeDefined();
    const { message } = (await (await page.request.get(`/api/dev/mailbox/${mail!.id}`)).json()) as { message: { html: string; text: string } };
    expect(message.html).toContain(`<img src="${LOGO}"`);
    expect(message.html).toContain('Acme &amp; &quot;Partners&quot; Portal');
    expect(message.html).not.toContain('Gatehouse');
    expect(message.text).toContain(`your ${BRAND} account`);
    expect(message.text).toContain('Sent by Acme & "Partners" Portal.');
    // The button says what the page and the subject say, and the time is the configured one, rounded.
    expect(message.html).toContain('>Reset Password</a>');
    expect(message.text).toContain('expires in 1 hour.');
    const link = /https?:\/\/\S+#token=[A-Za-z0-9_-]{43}/.exec(message.text)![0];

    await page.goto(link);
    await page.getByLabel('New password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await page.getByLabel('Confirm new password', { exact: true }).fill(OTHER_STRONG_PASSWORD);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('button', { name: 'Sign in now' }).click();
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    expect(await page.getByRole('status').filter({ hasText: /\S/ }).innerText()).toBe('Your password was changed. Sign in with the new one.');
    expect(await axeViolations(page)).toEqual([]);

    await signIn(page, 'bea@example.com', OTHER_STRONG_PASSWORD);
    await page.getByRole('heading', { name: 'Welcome, Bea Brand' }).waitFor();
    await expectBrandInHeader(page);
    await expect.poll(() => page.title()).toBe(`Home · ${BRAND}`);
    expect(record.cspViolations).toEqual([]);
    expect(record.pageErrors).toEqual([]);
    await context.close();
  });

  it('has a favicon that resolves to an SVG image', async () => {
    const { context, page } = await openPage(browser, plain.baseUrl);
    await page.goto('/login');
    const href = await page.locator('link[rel="icon"]').getAttribute('href');
    expect(href).toMatch(/^\/assets\/favicon-[\w-]+\.svg$/);
    const res = await page.request.get(href!);
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toMatch(/^image\/svg\+xml/);
    expect(await res.text()).toContain('<svg');
    await context.close();
  });

  it('keeps the header the same height signed out and signed in, shows My account when signed in, and says "You are signed out." after signing out', async () => {
    const { context, page } = await openPage(browser, plain.baseUrl);
    const header = page.getByRole('banner');
    await page.goto('/login');
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    // No BRAND_*: the default name and the built-in mark.
    expect(await header.innerText()).toContain('Gatehouse');
    expect(await header.locator('svg.brand-logo').count()).toBe(1);
    expect(await page.getByRole('status').filter({ hasText: /\S/ }).count()).toBe(0);
    const signedOutHeight = (await header.boundingBox())!.height;

    await signIn(page, 'hana');
    await page.getByRole('heading', { name: 'Welcome, Hana Header' }).waitFor();
    const signedInHeight = (await header.boundingBox())!.height;
    expect(signedInHeight).toBe(signedOutHeight);
    const account = header.getByRole('link', { name: 'My account' });
    expect(await account.getAttribute('href')).toBe('/account');

    await header.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    expect(pathOf(page)).toBe('/login');
    expect(await page.getByRole('status').filter({ hasText: /\S/ }).innerText()).toBe('You are signed out.');
    expect((await header.boundingBox())!.height).toBe(signedOutHeight);
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });

  it('logs no console error on the signed-out pages (no /api/auth/me probe without a session cookie), and still finds a session that exists', async () => {
    const { context, page } = await openPage(browser, plain.baseUrl);
    const errors: string[] = [];
    const me: string[] = [];
    page.on('console', (m: ConsoleMessage) => (m.type() === 'error' ? errors.push(`${page.url()}: ${m.text()}`) : undefined));
    page.on('request', (r) => (r.url().endsWith('/api/auth/me') ? me.push(r.url()) : undefined));
    for (const [path, heading] of SIGNED_OUT_PAGES) {
      await page.goto(path);
      await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
      // Whatever the page asks for after rendering has time to fail.
      await page.waitForLoadState('networkidle');
    }
    // A guarded page sends a signed-out visitor to sign in without asking either.
    await page.goto('/users');
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    await page.waitForLoadState('networkidle');
    expect(errors).toEqual([]);
    expect(me).toEqual([]);

    // With a session cookie the app asks, and is signed in.
    expect((await page.request.post('/api/auth/login', { data: { login: 'hana', password: STRONG_PASSWORD } })).status()).toBe(200);
    await page.goto('/');
    await page.getByRole('heading', { name: 'Welcome, Hana Header' }).waitFor();
    expect(me.length).toBe(1);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('does not scroll sideways at 1280 and 390 px on the signed-out pages', async () => {
    const { context, page } = await openPage(browser, app.baseUrl);
    for (const width of [1280, 390]) {
      await page.setViewportSize({ width, height: width === 1280 ? 800 : 844 });
      for (const [path, heading] of [...SIGNED_OUT_PAGES, ['/no/such/page', 'Page not found']] as const) {
        await page.goto(path);
        await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
        expect(overflow, `${path} at ${width}`).toBeLessThanOrEqual(0);
      }
    }
    await context.close();
  });

  it('follows the system’s dark mode, with its own colours', async () => {
    const { context, page } = await openPage(browser, plain.baseUrl);
    const colours = async (): Promise<{ page: string; text: string }> =>
      page.evaluate(() => ({ page: getComputedStyle(document.body).backgroundColor, text: getComputedStyle(document.body).color }));
    await page.emulateMedia({ colorScheme: 'light' });
    await page.goto('/login');
    await page.getByRole('heading', { name: 'Sign in', level: 1 }).waitFor();
    const light = await colours();
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await colours();
    expect(light.page).toBe('rgb(243, 245, 247)');
    expect(dark.page).toBe('rgb(13, 17, 23)');
    expect(dark.text).not.toBe(light.text);
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });
});
