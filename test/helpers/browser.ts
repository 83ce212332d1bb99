import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { describe } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { AppDeps } from '../../src/deps.js';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import type { Mailer } from '../../src/mail/transport.js';
import { makeTestApp, type TestContext } from './app.js';

/** The Debian package's browser; playwright never downloads one here. */
export const CHROMIUM_PATH = '/usr/bin/chromium';
/** Built by `npm run build:web` (the test commands build first). */
export const WEB_ROOT = fileURLToPath(new URL('../../dist/web', import.meta.url));

const IN_CI = process.env.CI === 'true';
const CHROMIUM_PRESENT = fs.existsSync(CHROMIUM_PATH);
const SKIP_LINE = 'SKIPPED e2e: install chromium: apt-get install -y chromium';

/** Outside CI a missing Chromium skips the browser suites; with CI=true they run and fail in beforeAll. */
export const skipBrowserSuites = !CHROMIUM_PRESENT && !IN_CI;

if (skipBrowserSuites) announceSkipOnce();

/** `describe` for suites that drive Chromium. */
export const describeInBrowser = describe.skipIf(skipBrowserSuites);

/**
 * One loud line per test run, not one per test file: vitest runs each file in its own fork,
 * so the forks agree through a marker file named after their common parent process.
 */
function announceSkipOnce(): void {
  const marker = path.join(os.tmpdir(), `gatehouse-e2e-skip-${process.ppid}`);
  try {
    fs.writeFileSync(marker, SKIP_LINE, { flag: 'wx' });
  } catch {
    return;
  }
  console.warn(`\n${'!'.repeat(SKIP_LINE.length)}\n${SKIP_LINE}\n${'!'.repeat(SKIP_LINE.length)}\n`);
}

export async function launchBrowser(): Promise<Browser> {
  if (!CHROMIUM_PRESENT) throw new Error(`Chromium is missing at ${CHROMIUM_PATH} and CI=true: install it with apt-get install -y chromium`);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

export interface RunningApp {
  /** e.g. http://127.0.0.1:41234, also the app's PUBLIC_URL */
  baseUrl: string;
  ctx: TestContext;
  close(): Promise<void>;
}

export interface WebAppOptions {
  /** e.g. `secrets` (a memory store holding the SMTP secrets) or `devInbox` */
  deps?: Partial<AppDeps>;
  /** what the outbox worker sends with (default: the in-memory mailer, `ctx.mailer`); a function chooses per message */
  mailer?: Mailer | (() => Promise<Mailer>);
  env?: Record<string, string>;
}

/**
 * The real app with the built web app, listening on an ephemeral loopback port. It uses the
 * real clock: the browser compares cookie expiry with real time.
 */
export async function startWebApp(options: WebAppOptions = {}): Promise<RunningApp> {
  if (!fs.existsSync(path.join(WEB_ROOT, 'index.html'))) {
    throw new Error(`${WEB_ROOT} has no index.html: run \`npm run build:web\` before the browser tests`);
  }
  for (let attempt = 1; ; attempt++) {
    // PUBLIC_URL (the origin check) must be known before the app is built, so the port is chosen first.
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    const ctx = await makeTestApp({
      env: { ...options.env, PUBLIC_URL: baseUrl },
      deps: { clock: systemClock, limiter: createMemoryRateLimiter(systemClock), webRoot: WEB_ROOT, ...options.deps },
      ...(options.mailer === undefined ? {} : { mailer: options.mailer }),
    });
    try {
      await ctx.app.listen({ host: '127.0.0.1', port });
      return { baseUrl, ctx, close: () => ctx.close() };
    } catch (err) {
      await ctx.close();
      // Another process took the port between our probe and listen: try another one.
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 5) throw err;
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** What a page did that the tests check after the fact. */
export interface PageRecord {
  /** every URL the page requested (documents, scripts, styles, fetches) */
  requests: string[];
  /** requests to any origin other than the app's */
  foreignRequests(): string[];
  /** console messages about Content-Security-Policy violations */
  cspViolations: string[];
  /** uncaught exceptions in the page */
  pageErrors: string[];
}

/** A fresh browser context (no cookies) and page on the app, recording requests, CSP reports and errors. */
export async function openPage(browser: Browser, baseUrl: string): Promise<{ context: BrowserContext; page: Page; record: PageRecord }> {
  const context = await browser.newContext({ baseURL: baseUrl, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const origin = new URL(baseUrl).origin;
  const record: PageRecord = {
    requests: [],
    foreignRequests: () => record.requests.filter((url) => !url.startsWith('data:') && new URL(url).origin !== origin),
    cspViolations: [],
    pageErrors: [],
  };
  context.on('request', (request) => record.requests.push(request.url()));
  page.on('console', (message) => {
    if (/content security policy/i.test(message.text())) record.cspViolations.push(message.text());
  });
  page.on('pageerror', (error) => record.pageErrors.push(String(error)));
  return { context, page, record };
}

/** Whether the element the locator points at has keyboard focus. */
export async function isFocused(page: Page, locator: ReturnType<Page['locator']>): Promise<boolean> {
  return locator.evaluate((el) => el === document.activeElement);
}

/** Whether the element gets keyboard focus within a short time (focus moves after a re-render). */
export async function becomesFocused(page: Page, locator: ReturnType<Page['locator']>, timeoutMs = 2000): Promise<boolean> {
  const element = await locator.elementHandle();
  try {
    await page.waitForFunction((el) => el === document.activeElement, element, { timeout: timeoutMs });
    return true;
  } catch {
    return false;
  } finally {
    await element?.dispose();
  }
}

/** The URL's path and query, without origin. */
export function pathOf(page: Page): string {
  const url = new URL(page.url());
  return url.pathname + url.search;
}

const AXE_SOURCE = fs.readFileSync(fileURLToPath(new URL('../../node_modules/axe-core/axe.min.js', import.meta.url)), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core with the WCAG 2.0/2.1 A and AA rules. The source is evaluated over the
 * DevTools protocol, which the page's CSP does not govern, so the page keeps its real CSP.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const loaded = await page.evaluate(() => typeof (window as unknown as { axe?: unknown }).axe === 'object');
  if (!loaded) await page.evaluate(AXE_SOURCE);
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, options: unknown) => Promise<{ violations: Array<{ id: string; impact: string | null; help: string; nodes: Array<{ target: unknown[] }> }> }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] }, resultTypes: ['violations'] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }));
  });
}
