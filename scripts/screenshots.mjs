#!/usr/bin/env node
// npm run screenshots: every page in its main states at 1280×800 and 390×844, as PNG files in
// docs/screenshots/ (name-width.png; add --dark for a dark-mode set, name-width-dark.png).
// Builds nothing: run `npm run build` first. Starts the built server as `npm start` does, on a
// free loopback port with a throw-away DATA_DIR and the dev mailbox, seeds an admin and users
// with the CLI, and drives Chromium (/usr/bin/chromium, or CHROMIUM_PATH) with playwright-core.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'gatehouse.js');
// SCREENSHOTS_DIR: somewhere else (the test that runs this script writes to a temporary folder).
const OUT = process.env.SCREENSHOTS_DIR ? path.resolve(process.env.SCREENSHOTS_DIR) : path.join(ROOT, 'docs', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const DARK = process.argv.includes('--dark');
const VIEWPORTS = [
  { width: 1280, height: 800 },
  { width: 390, height: 844 },
];
const ADMIN = { login: 'admin', password: 'violet kettle drums at midnight', name: 'Ada Admin', email: 'ada@example.com' };
const USER = { login: 'uma@example.com', password: 'quiet orchard lamps in winter', name: 'Uma User' };
/** her password is reset on every viewport; she never signs in here */
const RESET_USER = { email: 'rosa@example.com', name: 'Rosa Reset' };
/** reset links already used, so each viewport takes a fresh one */
const usedLinks = [];
const NEW_PASSWORDS = ['paper boats drift down the river', 'granite steps lead to the lighthouse'];

for (const file of [path.join(ROOT, 'dist', 'main.js'), path.join(ROOT, 'dist', 'web', 'index.html')]) {
  if (!fs.existsSync(file)) fail(`${path.relative(ROOT, file)} is missing: run \`npm run build\` first`);
}
if (!fs.existsSync(CHROMIUM)) fail(`Chromium is missing at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH`);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-screenshots-'));
const port = await freePort();
const baseUrl = `http://127.0.0.1:${port}`;
const env = {
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  DATA_DIR: dataDir,
  PORT: String(port),
  HOST: '127.0.0.1',
  PUBLIC_URL: baseUrl,
  MAIL_DEV_INBOX: 'true',
  LOG_LEVEL: 'warn',
  LOG_FORMAT: 'json',
};

let server;
let browser;
let written = 0;
try {
  // Users made before the first start: no generated admin password.
  await cli(['users', 'create', '--username', ADMIN.login, '--email', ADMIN.email, '--name', ADMIN.name, '--role', 'system-admin'], ADMIN.password);
  await cli(['users', 'create', '--email', USER.login, '--name', USER.name, '--role', 'user'], USER.password);
  await cli(['users', 'create', '--email', RESET_USER.email, '--name', RESET_USER.name, '--role', 'user'], 'seven silver spoons on a shelf');
  await cli(['users', 'create', '--username', 'lee', '--name', 'Lee Locked', '--role', 'user'], 'blue lanterns over the harbour');
  server = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  fs.mkdirSync(OUT, { recursive: true });
  for (const [i, viewport] of VIEWPORTS.entries()) await shootViewport(viewport, NEW_PASSWORDS[i]);
  console.log(`${written} screenshots in ${path.relative(process.cwd(), OUT) || '.'}`);
} catch (error) {
  console.error(`screenshots: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await browser?.close();
  if (server) await stopServer(server);
  fs.rmSync(dataDir, { recursive: true, force: true });
}

async function shootViewport(viewport, newPassword) {
  const open = async () => {
    const context = await browser.newContext({ baseURL: baseUrl, viewport, colorScheme: DARK ? 'dark' : 'light', reducedMotion: 'reduce' });
    return { context, page: await context.newPage() };
  };
  const shot = async (page, name) => {
    await page.waitForLoadState('networkidle');
    // A rebuild while this runs replaces the hashed files the server's index.html names: say so rather than shoot unstyled pages.
    const styled = await page.evaluate(() => [...document.styleSheets].some((sheet) => sheet.href !== null && sheet.cssRules.length > 0));
    if (!styled) throw new Error(`${page.url()} has no stylesheet: was dist/web rebuilt while the screenshots ran? Run again.`);
    // Focus rings from in-app navigation are not part of the picture.
    await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
    const file = path.join(OUT, `${name}-${viewport.width}${DARK ? '-dark' : ''}.png`);
    await page.screenshot({ path: file, fullPage: true });
    written++;
    console.log(`  ${path.relative(ROOT, file)}`);
  };
  const h1 = (page, name) => page.getByRole('heading', { level: 1, ...(name ? { name } : {}) }).waitFor();

  // Signed out.
  const visitor = await open();
  let page = visitor.page;
  await page.goto('/login');
  await h1(page, 'Sign in');
  await shot(page, 'login');

  await page.goto('/forgot-password');
  await h1(page);
  await shot(page, 'forgot-password');
  await page.getByLabel('Email', { exact: true }).fill(RESET_USER.email);
  await page.getByRole('button', { name: 'Send reset link' }).click();
  await page.getByRole('status').filter({ hasText: 'If an account uses' }).waitFor();
  await shot(page, 'forgot-password-sent');

  // The reset email, from the dev mailbox.
  await page.goto('/dev/mailbox');
  await h1(page);
  const link = await waitForResetLink(page);
  await page.getByRole('row').filter({ hasText: RESET_USER.email }).first().waitFor();
  await shot(page, 'dev-mailbox');

  await page.goto(link);
  await page.getByLabel('New password', { exact: true }).waitFor();
  await shot(page, 'reset-password');
  await page.getByLabel('New password', { exact: true }).fill(newPassword);
  await page.getByLabel('Confirm new password', { exact: true }).fill(newPassword);
  await page.getByRole('button', { name: 'Set new password' }).click();
  await page.getByRole('button', { name: 'Sign in now' }).waitFor();
  // Within the countdown's 5 seconds, before the page leaves for the sign-in page.
  const done = path.join(OUT, `reset-password-done-${viewport.width}${DARK ? '-dark' : ''}.png`);
  await page.screenshot({ path: done, fullPage: true });
  written++;
  console.log(`  ${path.relative(ROOT, done)}`);

  await page.goto('/no/such/page');
  await h1(page, 'Page not found');
  await shot(page, 'not-found');
  await visitor.context.close();

  // An admin.
  const admin = await open();
  page = admin.page;
  await page.goto('/login');
  await signIn(page, ADMIN);
  await h1(page, `Welcome, ${ADMIN.name}`);
  await page.getByText(/There (is|are) \d+ users?\./).waitFor();
  await shot(page, 'home');

  await page.goto('/users');
  await page.getByRole('table').waitFor();
  await shot(page, 'users');

  await page.goto('/settings');
  await page.getByLabel('Host', { exact: true }).waitFor();
  await shot(page, 'settings-smtp');
  await page.getByLabel('Microsoft 365 — Microsoft Graph').check();
  await page.getByLabel('Tenant ID', { exact: true }).waitFor();
  await shot(page, 'settings-graph');

  await page.goto('/mail');
  await h1(page);
  await shot(page, 'mail');

  await page.goto('/audit');
  await page.getByRole('table').waitFor();
  await shot(page, 'audit');

  await page.goto('/change-password');
  await h1(page, 'Change your password');
  await shot(page, 'change-password');

  await page.goto('/account');
  await h1(page);
  await shot(page, 'account');

  await page.getByRole('banner').getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('status').filter({ hasText: /\S/ }).waitFor();
  await shot(page, 'login-signed-out');
  await admin.context.close();

  // A user who is not an admin.
  const user = await open();
  page = user.page;
  await page.goto('/login');
  await signIn(page, USER);
  await h1(page, `Welcome, ${USER.name}`);
  await shot(page, 'home-user');
  await user.context.close();
}

async function signIn(page, who) {
  await page.getByLabel('Email or username').fill(who.login);
  await page.getByLabel('Password', { exact: true }).fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** The newest reset link sent to RESET_USER, once the outbox has delivered it to the dev mailbox. */
async function waitForResetLink(page) {
  const deadline = Date.now() + 20_000;
  const seen = new Set(usedLinks);
  for (;;) {
    const list = await (await page.request.get('/api/dev/mailbox')).json();
    for (const summary of list.messages.filter((m) => m.to === RESET_USER.email)) {
      const { message } = await (await page.request.get(`/api/dev/mailbox/${summary.id}`)).json();
      const link = /https?:\/\/\S+#token=[A-Za-z0-9_-]+/.exec(message.text)?.[0];
      if (link && !seen.has(link)) {
        usedLinks.push(link);
        return link;
      }
    }
    if (Date.now() > deadline) throw new Error('no reset email reached the dev mailbox within 20 s');
    await new Promise((r) => setTimeout(r, 250));
  }
}

function cli(args, stdin) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: os.tmpdir(), stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`gatehouse ${args.slice(0, 2).join(' ')} exited ${code}: ${stderr.trim()}`))));
    child.stdin.end(`${stdin}\n`);
  });
}

async function startServer() {
  const child = spawn(process.execPath, [BIN, 'serve'], { env, cwd: os.tmpdir(), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += String(d)));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited ${child.exitCode}: ${stderr.trim()}`);
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the server did not start within 20 s: ${stderr.trim()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
}

function fail(message) {
  console.error(`screenshots: ${message}`);
  process.exit(1);
}
