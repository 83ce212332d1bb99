import fs from 'node:fs';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordAudit, type AuditInput } from '../../src/audit/audit.js';
import { STRONG_PASSWORD, addUser } from '../helpers/app.js';
import { axeViolations, describeInBrowser, launchBrowser, openPage, startWebApp, type RunningApp } from '../helpers/browser.js';

// Issue 10 items 3 and 8 on the Audit page: filters, the CSV export of exactly the filtered
// rows, and a table that fits its card at 1280 and stacks at 390 without sideways scroll.

const DAY = 86_400_000;
const LONG_DETAIL = { changed: Array.from({ length: 30 }, (_, i) => `setting${i}=value-${'x'.repeat(6)}-${i}`) };
const LONG_LABEL = `someone.with.a.really.long.address.${'y'.repeat(30)}@subdomain.example.com`;

/** RFC 4180 records (fields may be quoted, quotes doubled). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let record: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      record.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += c;
  }
  return records;
}

describeInBrowser('the Audit page in Chromium: filters, CSV export, a table that fits', () => {
  let app: RunningApp;
  let browser: Browser;
  let umaId: string;

  beforeAll(async () => {
    [app, browser] = await Promise.all([startWebApp(), launchBrowser()]);
    await addUser(app.ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' });
    umaId = (await addUser(app.ctx, { email: 'uma@example.com', name: 'Uma Umbrella' })).id;
    const now = Date.now();
    const at = (ms: number, input: AuditInput) => recordAudit(app.ctx.db, { now: () => new Date(ms) }, input);
    const uma = { id: umaId, label: 'uma@example.com' };
    // Three days ago: failed sign-ins and Uma's sign-in.
    for (let i = 0; i < 6; i++) await at(now - 3 * DAY + i * 60_000, { type: 'login_failed', ip: '203.0.113.7', outcome: 'failure', detail: { login: `guess${i}` } });
    await at(now - 3 * DAY + 10 * 60_000, { type: 'login_succeeded', actor: uma, ip: '2001:db8:85a3:1234:5678:8a2e:370:7334', outcome: 'success' });
    // Yesterday: more of both, and values that stretch a table.
    for (let i = 0; i < 4; i++) await at(now - DAY + i * 60_000, { type: 'login_failed', ip: '198.51.100.4', outcome: 'failure', detail: { login: 'uma@example.com' } });
    await at(now - DAY + 10 * 60_000, { type: 'login_succeeded', actor: uma, ip: '198.51.100.5', outcome: 'success' });
    await at(now - DAY + 20 * 60_000, {
      type: 'settings_changed',
      actor: { id: null, label: LONG_LABEL },
      target: { id: umaId, label: LONG_LABEL },
      ip: '2001:db8:85a3:1234:5678:8a2e:370:7334',
      outcome: 'success',
      detail: LONG_DETAIL,
    });
    await at(now - DAY + 30 * 60_000, { type: 'password_check_failed', actor: uma, target: uma, ip: '198.51.100.5', outcome: 'failure', detail: { failures: 1 } });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  async function signedInAdmin(viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page }> {
    const opened = await openPage(browser, app.baseUrl);
    await opened.page.setViewportSize(viewport);
    expect((await opened.page.request.post('/api/auth/login', { data: { login: 'root', password: STRONG_PASSWORD } })).status()).toBe(200);
    await opened.page.goto('/audit');
    await opened.page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
    await opened.page.getByRole('table').waitFor();
    return opened;
  }

  const sidewaysScroll = (page: Page): Promise<number> => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  /** The ids of the rows the table shows, top to bottom. */
  const rowIds = (page: Page): Promise<number[]> => page.locator('table tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-event-id'))));
  const eventCells = (page: Page): Promise<string[]> => page.locator('table tbody tr td:nth-child(2)').allInnerTexts();
  async function apiIds(page: Page, query: string): Promise<number[]> {
    const res = await page.request.get(`/api/audit?limit=200&${query}`);
    expect(res.status()).toBe(200);
    return ((await res.json()) as { events: { id: number }[] }).events.map((e) => e.id);
  }
  /** A UTC instant as the datetime-local value the reader's browser shows for it. */
  const localValue = (page: Page, ms: number): Promise<string> =>
    page.evaluate((t) => {
      const d = new Date(t);
      const p = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    }, ms);
  async function applyFilters(page: Page, expectStatus: RegExp): Promise<void> {
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByRole('status').filter({ hasText: expectStatus }).waitFor();
  }

  it('fits its card at 1280: every cell inside the card, no scroller, the long detail whole behind "Show all"', async () => {
    const { context, page } = await signedInAdmin();
    const fit = await page.evaluate(() => {
      const card = document.querySelector('.card')!.getBoundingClientRect();
      const scroller = document.querySelector('.table-scroll')!;
      const cells = [...document.querySelectorAll('table tbody td')].map((td) => td.getBoundingClientRect());
      const detail = [...document.querySelectorAll('table tbody td:last-child')].map((td) => td.getBoundingClientRect());
      return {
        overflow: scroller.scrollWidth - scroller.clientWidth,
        cardLeft: card.left,
        cardRight: card.right,
        maxRight: Math.max(...cells.map((r) => r.right)),
        minLeft: Math.min(...cells.map((r) => r.left)),
        detailRights: detail.map((r) => r.right),
        tableWidth: document.querySelector('table')!.getBoundingClientRect().width,
      };
    });
    expect(fit.overflow).toBeLessThanOrEqual(0);
    expect(fit.maxRight).toBeLessThanOrEqual(fit.cardRight);
    expect(fit.minLeft).toBeGreaterThanOrEqual(fit.cardLeft);
    for (const right of fit.detailRights) expect(right).toBeLessThanOrEqual(fit.cardRight);
    expect(await sidewaysScroll(page)).toBeLessThanOrEqual(0);
    // The long detail shows its start and the whole text on request.
    const row = page.locator('table tbody tr').filter({ hasText: 'Settings changed' });
    const detail = row.locator('td').last();
    expect(await detail.innerText()).toMatch(/changed: setting0=.*…\s*Show all$/s);
    expect(await detail.innerText()).not.toContain('setting29');
    await detail.getByText('Show all').click();
    await detail.getByText(/setting29=value-x{6}-29/).waitFor();
    expect(await detail.getByText('Show all').isVisible()).toBe(false);
    expect(await page.evaluate(() => document.querySelector('.table-scroll')!.scrollWidth - document.querySelector('.table-scroll')!.clientWidth)).toBeLessThanOrEqual(0);
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });

  it('narrows the rows by type, outcome, user and time range, says how many match, and clears', async () => {
    const { context, page } = await signedInAdmin();
    const all = await rowIds(page);
    expect(all).toEqual(await apiIds(page, ''));
    expect(await page.getByLabel('Event type').evaluate((s: HTMLSelectElement) => s.options.length)).toBeGreaterThan(19);

    await page.getByLabel('Event type').selectOption({ label: 'Sign-in failed' });
    await applyFilters(page, /^10 events match the filters\.$/);
    expect(await rowIds(page)).toEqual(await apiIds(page, 'type=login_failed'));
    expect(new Set((await eventCells(page)).map((t) => t.replace(/\s+/g, ' ').trim()))).toEqual(new Set(['Sign-in failed login_failed']));
    expect(await axeViolations(page)).toEqual([]);

    // Narrower: the typed login, and a time range (yesterday's attempts only).
    await page.getByLabel('User').fill('UMA@example');
    await page.getByLabel('From').fill(await localValue(page, Date.now() - 2 * DAY));
    await page.getByLabel('To').fill(await localValue(page, Date.now()));
    await applyFilters(page, /^4 events match the filters\.$/);
    const narrowed = await rowIds(page);
    expect(narrowed).toHaveLength(4);
    expect(narrowed).toEqual(await apiIds(page, `type=login_failed&user=uma%40example&from=${new Date(Date.now() - 3 * DAY + DAY).toISOString()}`));

    // Outcome and user: Uma's successes, by her id.
    await page.getByLabel('Event type').selectOption({ label: 'All event types' });
    await page.getByLabel('Outcome').selectOption({ label: 'Success' });
    await page.getByLabel('User').fill(umaId);
    await page.getByLabel('From').fill('');
    await page.getByLabel('To').fill('');
    await applyFilters(page, /^3 events match the filters\.$/);
    expect(await rowIds(page)).toEqual(await apiIds(page, `outcome=success&user=${umaId}`));
    expect(await page.locator('table tbody tr').filter({ hasText: 'Failure' }).count()).toBe(0);

    // Nothing matches: said in words, and still accessible.
    await page.getByLabel('User').fill('nobody-at-all');
    await applyFilters(page, /^No events match these filters\.$/);
    expect(await page.getByRole('table').count()).toBe(0);
    await page.getByText('No events match these filters.', { exact: true }).first().waitFor();
    expect(await axeViolations(page)).toEqual([]);

    // A range that ends before it starts is caught on the field, before asking the server.
    await page.getByLabel('User').fill('');
    await page.getByLabel('From').fill(await localValue(page, Date.now()));
    await page.getByLabel('To').fill(await localValue(page, Date.now() - DAY));
    const asked = page.waitForRequest(/\/api\/audit\?/, { timeout: 1000 }).then(
      () => true,
      () => false,
    );
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('Choose a time after “From”.').waitFor();
    expect(await page.getByLabel('To').getAttribute('aria-invalid')).toBe('true');
    expect(await asked).toBe(false);
    expect(await axeViolations(page)).toEqual([]);

    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.getByRole('status').filter({ hasText: 'Filters cleared: showing all events.' }).waitFor();
    expect(await rowIds(page)).toEqual(await apiIds(page, ''));
    expect(await page.getByLabel('From').inputValue()).toBe('');
    await context.close();
  });

  it('exports exactly the filtered rows as a CSV download', async () => {
    const { context, page } = await signedInAdmin();
    await page.getByLabel('Event type').selectOption({ label: 'Sign-in failed' });
    await page.getByLabel('User').fill('uma');
    await applyFilters(page, /events? match/);
    const shown = await rowIds(page);
    expect(shown).toHaveLength(4);

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    expect(download.suggestedFilename()).toBe(`gatehouse-audit-${today}.csv`);
    expect(download.url()).toBe(`${app.baseUrl}/api/audit/export.csv?type=login_failed&user=uma`);
    const text = fs.readFileSync((await download.path())!, 'utf8');
    const [header, ...rows] = parseCsv(text);
    expect(header).toEqual(['id', 'at', 'type', 'outcome', 'actor', 'target', 'ip', 'detail']);
    expect(rows.map((r) => Number(r[0]))).toEqual(shown);
    expect(rows.every((r) => r[2] === 'login_failed' && r[3] === 'failure' && r[7] === '{"login":"uma@example.com"}')).toBe(true);

    // Unfiltered, it holds every event, the long detail as compact JSON.
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await page.getByRole('status').filter({ hasText: 'Filters cleared' }).waitFor();
    const [all] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    const allRows = parseCsv(fs.readFileSync((await all.path())!, 'utf8')).slice(1);
    expect(allRows.map((r) => Number(r[0]))).toEqual(await rowIds(page));
    expect(allRows.find((r) => r[2] === 'settings_changed')![7]).toBe(JSON.stringify(LONG_DETAIL));
    await context.close();
  });

  it('stacks each event at 390 px: no sideways scroll, every cell on screen, labels for each value', async () => {
    const { context, page } = await signedInAdmin({ width: 390, height: 844 });
    expect(await sidewaysScroll(page)).toBeLessThanOrEqual(0);
    const layout = await page.evaluate(() => {
      const width = document.documentElement.clientWidth;
      const cells = [...document.querySelectorAll('table tbody td')];
      return {
        width,
        outside: cells.filter((td) => td.getBoundingClientRect().right > width || td.getBoundingClientRect().left < 0).length,
        scroller: document.querySelector('.table-scroll')!.scrollWidth - document.querySelector('.table-scroll')!.clientWidth,
        label: getComputedStyle(cells[0]!, '::before').content,
        headerHeight: document.querySelector('table thead')!.getBoundingClientRect().height,
      };
    });
    expect(layout.outside).toBe(0);
    expect(layout.scroller).toBeLessThanOrEqual(0);
    expect(layout.label).toContain('Time');
    expect(layout.headerHeight).toBeLessThanOrEqual(1);
    expect(await axeViolations(page)).toEqual([]);
    // The filters stack too, and still work.
    await page.getByLabel('Outcome').selectOption({ label: 'Failure' });
    await applyFilters(page, /events match the filters/);
    expect(await rowIds(page)).toEqual(await apiIds(page, 'outcome=failure'));
    expect(await sidewaysScroll(page)).toBeLessThanOrEqual(0);
    expect(await axeViolations(page)).toEqual([]);
    await context.close();
  });
});
