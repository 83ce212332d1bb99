import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { recordAudit, type AuditInput } from '../../src/audit/audit.js';
import { AUDIT_EXPORT_MAX_ROWS } from '../../src/audit/routes.js';
import { AUDIT_TYPES } from '../../src/audit/api-schemas.js';
import type { Db } from '../../src/db/index.js';
import { addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { bothDialects, postgresSuite, type DialectDb } from '../helpers/pg.js';

// Issue 10 item 8: GET /api/audit's filters (type, outcome, user, from/to) with paging, and the
// CSV export of the same rows, on SQLite and PostgreSQL.

const describeOnPostgres = await postgresSuite();

const HOUR = 3_600_000;
const T0 = Date.parse('2026-03-01T06:00:00.000Z');
const iso = (ms: number): string => new Date(ms).toISOString();

/** Records an event at a chosen time. */
async function eventAt(db: Db, ms: number, input: AuditInput): Promise<void> {
  await recordAudit(db, { now: () => new Date(ms) }, input);
}

interface Event {
  id: number;
  at: string;
  type: string;
  outcome: string;
  actor: { id: string | null; label: string | null } | null;
  target: { id: string | null; label: string | null } | null;
  ip: string | null;
  detail: Record<string, unknown> | null;
}

/** RFC 4180 records: fields, quotes doubled inside quoted fields, CRLF between records. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"' && field === '') {
      // a quoted field
      i++;
      for (;;) {
        if (i >= text.length) throw new Error('unterminated quoted field');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ',' && !text.startsWith('\r\n', i)) throw new Error(`text after a closing quote at ${i}`);
      continue;
    }
    if (c === ',') {
      record.push(field);
      field = '';
      i++;
    } else if (text.startsWith('\r\n', i)) {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += 2;
    } else {
      if (c === '\n' || c === '\r') throw new Error(`a bare line break outside quotes at ${i}`);
      field += c;
      i++;
    }
  }
  if (field !== '' || record.length > 0) throw new Error('the last record does not end with CRLF');
  return records;
}

for (const [dialect, makeDb, suite] of bothDialects(describeOnPostgres, 'gatehouse-audit-')) {
  suite(`audit filters and CSV export on ${dialect}`, () => {
    let dbh: DialectDb;
    let ctx: TestContext;
    let admin: string;
    let plain: string;
    let umaId: string;
    let rootId: string;

    beforeAll(async () => {
      dbh = await makeDb();
      ctx = await makeTestApp({ db: dbh.db });
      rootId = (await addUser(ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' })).id;
      umaId = (await addUser(ctx, { email: 'uma@example.com', name: 'Uma Umbrella' })).id;
      await addUser(ctx, { username: 'plain', name: 'Plain Person' });
      const root = { id: rootId, label: 'root' };
      const uma = { id: umaId, label: 'uma@example.com' };
      const db = ctx.db;
      await eventAt(db, T0 + 1 * HOUR, { type: 'login_failed', ip: '203.0.113.7', outcome: 'failure', detail: { login: 'Uma@Example.com' } });
      await eventAt(db, T0 + 2 * HOUR, { type: 'login_succeeded', actor: uma, ip: '203.0.113.8', outcome: 'success' });
      await eventAt(db, T0 + 3 * HOUR, { type: 'user_updated', actor: root, target: uma, ip: '198.51.100.1', outcome: 'success', detail: { fields: ['name'] } });
      await eventAt(db, T0 + 4 * HOUR, { type: 'reset_requested', ip: '2001:db8::1', outcome: 'failure', detail: { email: 'u***@example.com', throttled: true } });
      // Values a spreadsheet would run as formulas, and ones that need quoting.
      await eventAt(db, T0 + 5 * HOUR, {
        type: 'settings_changed',
        actor: { id: null, label: '=2+5' },
        target: { id: 'x', label: 'O"Brien, Pat' },
        ip: '@evil',
        outcome: 'success',
        detail: { note: '=HYPERLINK("http://evil.example")', lines: 'a\r\nb', tab: '\tx' },
      });
      await eventAt(db, T0 + 5 * HOUR + 1, { type: 'user_created', actor: { id: null, label: '-10' }, target: { id: null, label: '+1' }, ip: '\tip', outcome: 'success' });
      await eventAt(db, T0 + 5 * HOUR + 2, { type: 'user_created', actor: { id: null, label: '\rcr' }, target: { id: null, label: 'multi\nline' }, outcome: 'success' });
      await eventAt(db, T0 + 6 * HOUR - 1, { type: 'login_failed', ip: '203.0.113.9', outcome: 'failure', detail: { login: 'someone_else' } });
      // The sign-ins record login_succeeded at the fake clock's 12:00.
      admin = await signIn(ctx, 'root');
      plain = await signIn(ctx, 'plain');
    }, 60_000);
    afterAll(async () => {
      await ctx?.close();
      await dbh?.drop();
    });

    const get = (url: string, cookie: string | undefined = admin): Promise<LightMyRequestResponse> => ctx.app.inject({ method: 'GET', url, headers: cookie ? { cookie } : {} });
    async function events(query: string): Promise<Event[]> {
      const res = await get(`/api/audit?limit=200&${query}`);
      expect(res.statusCode, `${query}: ${res.body}`).toBe(200);
      return (res.json() as { events: Event[] }).events;
    }
    async function refused(url: string, fields: string[]): Promise<Record<string, string>> {
      const res = await get(url);
      expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
      const body = res.json() as { error: string; fields: Record<string, string> };
      expect(body.error).toBe('invalid_request');
      expect(Object.keys(body.fields).sort()).toEqual([...fields].sort());
      return body.fields;
    }
    const typesOf = (list: Event[]): string[] => list.map((e) => e.type);
    const hours = (list: Event[]): number[] => list.map((e) => (Date.parse(e.at) - T0) / HOUR);

    it('without filters lists every event, newest first', async () => {
      const all = await events('');
      expect(all).toHaveLength(10);
      expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => b - a));
      expect(typesOf(all).slice(0, 2)).toEqual(['login_succeeded', 'login_succeeded']);
    });

    it('filters by one type, by several (repeated or comma-separated), and refuses an unknown one', async () => {
      expect(typesOf(await events('type=login_failed'))).toEqual(['login_failed', 'login_failed']);
      const repeated = await events('type=login_failed&type=user_updated');
      expect(typesOf(repeated)).toEqual(['login_failed', 'user_updated', 'login_failed']);
      expect(await events('type=user_updated,login_failed')).toEqual(repeated);
      expect(await events('type=reset_completed')).toEqual([]);
      const fields = await refused('/api/audit?type=login_failed,nope', ['type']);
      expect(fields.type).toContain('login_succeeded');
      await refused('/api/audit?type=', ['type']);
      await refused('/api/audit?type=login_failed,', ['type']);
      await refused('/api/audit?type=LOGIN_FAILED', ['type']);
      // Every known type is accepted.
      expect((await get(`/api/audit?type=${AUDIT_TYPES.join(',')}`)).statusCode).toBe(200);
    });

    it('filters by outcome and refuses another value', async () => {
      const failures = await events('outcome=failure');
      expect(failures.map((e) => e.outcome)).toEqual(['failure', 'failure', 'failure']);
      expect(typesOf(failures)).toEqual(['login_failed', 'reset_requested', 'login_failed']);
      const successes = await events('outcome=success');
      expect(successes).toHaveLength(7);
      expect(successes.every((e) => e.outcome === 'success')).toBe(true);
      await refused('/api/audit?outcome=maybe', ['outcome']);
      await refused('/api/audit?outcome=', ['outcome']);
    });

    it('filters by user: an id, a recorded label, a current name or email, a failed sign-in’s login', async () => {
      // By id: where Uma acted or was acted on.
      expect(typesOf(await events(`user=${umaId}`))).toEqual(['user_updated', 'login_succeeded']);
      expect(typesOf(await events(`user=${rootId}`))).toEqual(['login_succeeded', 'user_updated']);
      // By part of the label, any case: the failed sign-in that typed her address too.
      expect(typesOf(await events('user=UMA@example'))).toEqual(['user_updated', 'login_succeeded', 'login_failed']);
      // By her current name, which no event recorded.
      expect(typesOf(await events('user=umbrella'))).toEqual(['user_updated', 'login_succeeded']);
      // LIKE's own characters are taken literally.
      expect(typesOf(await events('user=e_e'))).toEqual(['login_failed']);
      expect(hours(await events('user=e_e'))).toEqual([6 - 1 / HOUR]);
      expect(await events('user=%25')).toEqual([]);
      expect(await events('user=o%5F')).toEqual([]);
      expect(typesOf(await events('user=%22brien'))).toEqual(['settings_changed']);
      expect(await events('user=nobody-at-all')).toEqual([]);
      await refused('/api/audit?user=', ['user']);
      await refused('/api/audit?user=%20%20', ['user']);
      await refused(`/api/audit?user=${'x'.repeat(201)}`, ['user']);
    });

    it('filters by a UTC time range, both ends inclusive, and refuses times that are not ISO-8601 UTC', async () => {
      expect(hours(await events(`from=${iso(T0 + 2 * HOUR)}&to=${iso(T0 + 4 * HOUR)}`))).toEqual([4, 3, 2]);
      expect(hours(await events('from=2026-03-01T08:00Z&to=2026-03-01T10:00:00Z'))).toEqual([4, 3, 2]);
      expect(hours(await events(`to=${iso(T0 + 1 * HOUR)}`))).toEqual([1]);
      expect((await events(`from=${iso(T0 + 6 * HOUR)}`)).map((e) => e.type)).toEqual(['login_succeeded', 'login_succeeded']);
      expect(await events('from=2026-03-01T12:00:00.001Z')).toEqual([]);
      for (const bad of ['yesterday', '2026-03-01', '2026-03-01T12:00:00', '2026-03-01T12:00:00+01:00', '2026-02-30T00:00:00Z', '2026-03-01T24:00:00Z', '2026-03-01T12:60Z', '1773000000000']) {
        await refused(`/api/audit?from=${encodeURIComponent(bad)}`, ['from']);
        await refused(`/api/audit?to=${encodeURIComponent(bad)}`, ['to']);
      }
      const fields = await refused('/api/audit?from=2026-03-01T10:00:00Z&to=2026-03-01T09:00:00Z', ['to']);
      expect(fields.to).toBe('Must not be before from.');
      // Every bad filter is named at once.
      await refused('/api/audit?from=x&to=y&type=nope&user=%20', ['from', 'to', 'type', 'user']);
    });

    it('combines the filters', async () => {
      expect(hours(await events('type=login_failed&user=uma'))).toEqual([1]);
      expect(typesOf(await events('outcome=success&user=uma&from=2026-03-01T08:30:00Z'))).toEqual(['user_updated']);
      expect(typesOf(await events(`type=login_succeeded,user_updated&outcome=success&user=${umaId}&to=${iso(T0 + 2 * HOUR)}`))).toEqual(['login_succeeded']);
      expect(await events('type=login_failed&outcome=success')).toEqual([]);
    });

    it('pages filtered lists with limit and before', async () => {
      const query = 'type=login_failed,login_succeeded,user_created';
      const whole = await events(query);
      expect(whole).toHaveLength(7);
      const paged: Event[] = [];
      let before = '';
      for (let page = 0; page < 10; page++) {
        const res = await get(`/api/audit?limit=2&${query}${before}`);
        const list = (res.json() as { events: Event[] }).events;
        paged.push(...list);
        if (list.length < 2) break;
        before = `&before=${list.at(-1)!.id}`;
      }
      expect(paged).toEqual(whole);
      // Paging with a filter skips what the filter leaves out.
      const failed = await events('type=login_failed');
      const next = (await get(`/api/audit?limit=1&type=login_failed&before=${failed[0]!.id}`)).json() as { events: Event[] };
      expect(next.events.map((e) => e.id)).toEqual([failed[1]!.id]);
    });

    it('exports the filtered rows as CSV: header, columns, the same rows as the list, newest first', async () => {
      const res = await get('/api/audit/export.csv?type=login_failed,user_updated,login_succeeded&outcome=success');
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(res.headers['content-disposition']).toBe('attachment; filename="gatehouse-audit-20260301.csv"');
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['gatehouse-export-truncated']).toBe('false');
      expect(res.body.endsWith('\r\n')).toBe(true);
      const [header, ...rows] = parseCsv(res.body);
      expect(header).toEqual(['id', 'at', 'type', 'outcome', 'actor', 'target', 'ip', 'detail']);
      const listed = await events('type=login_failed,user_updated,login_succeeded&outcome=success');
      expect(rows.map((r) => Number(r[0]))).toEqual(listed.map((e) => e.id));
      expect(res.headers['gatehouse-export-rows']).toBe(String(listed.length));
      const updated = rows.find((r) => r[2] === 'user_updated')!;
      expect(updated).toEqual([updated[0], iso(T0 + 3 * HOUR), 'user_updated', 'success', 'root', 'uma@example.com', '198.51.100.1', '{"fields":["name"]}']);
      // Every filter applies to the export as to the list.
      for (const query of ['outcome=failure', `user=${umaId}`, 'user=uma', `from=${iso(T0 + 2 * HOUR)}&to=${iso(T0 + 5 * HOUR)}`, 'type=reset_completed', '']) {
        const csv = parseCsv((await get(`/api/audit/export.csv?${query}`)).body);
        expect(csv.slice(1).map((r) => Number(r[0])), query).toEqual((await events(query)).map((e) => e.id));
      }
    });

    it('quotes as RFC 4180 and neutralises cells a spreadsheet would run as formulas', async () => {
      const res = await get(`/api/audit/export.csv?from=${iso(T0 + 5 * HOUR)}&to=${iso(T0 + 5 * HOUR + 2)}`);
      const lines = res.body.split('\r\n');
      const [, cr, dash, settings] = parseCsv(res.body);
      expect(settings!.slice(2)).toEqual([
        'settings_changed',
        'success',
        "'=2+5",
        'O"Brien, Pat',
        "'@evil",
        JSON.stringify({ note: '=HYPERLINK("http://evil.example")', lines: 'a\r\nb', tab: '\tx' }),
      ]);
      expect(dash!.slice(4, 7)).toEqual(["'-10", "'+1", "'\tip"]);
      expect(cr!.slice(4, 7)).toEqual(["'\rcr", 'multi\nline', '']);
      // On the wire: quotes doubled inside a quoted field; plain fields unquoted.
      expect(res.body).toContain(',"O""Brien, Pat",');
      expect(res.body).toContain(",'@evil,");
      expect(res.body).toContain('"{""note"":""=HYPERLINK(\\""http://evil.example\\"")""');
      expect(lines[0]).toBe('id,at,type,outcome,actor,target,ip,detail');
      // No cell of any row starts with a formula character.
      for (const row of parseCsv((await get('/api/audit/export.csv')).body)) for (const cell of row) expect(cell, JSON.stringify(row)).not.toMatch(/^[=+\-@\t\r\n]/);
    });

    it('refuses bad filters, and paging parameters, on the export with 400', async () => {
      await refused('/api/audit/export.csv?type=nope', ['type']);
      await refused('/api/audit/export.csv?from=2026-13-01T00:00:00Z', ['from']);
      await refused('/api/audit/export.csv?outcome=all', ['outcome']);
      await refused('/api/audit/export.csv?limit=5', ['limit']);
      await refused('/api/audit/export.csv?before=5', ['before']);
      const res = await get('/api/audit/export.csv?type=nope');
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['content-disposition']).toBeUndefined();
    });

    it('answers 401 to an anonymous caller and 403 to a plain user, before judging the filters', async () => {
      for (const url of ['/api/audit?type=login_failed', '/api/audit/export.csv', '/api/audit?type=nope&from=x', '/api/audit/export.csv?outcome=bad']) {
        const anon = await get(url, '');
        expect(anon.statusCode, url).toBe(401);
        expect(anon.json().error).toBe('unauthenticated');
        const user = await get(url, plain);
        expect(user.statusCode, url).toBe(403);
        expect(user.json().error).toBe('forbidden');
      }
    });

    it(`holds at most ${AUDIT_EXPORT_MAX_ROWS} rows, the newest, and says when more matched`, async () => {
      const rows = Array.from({ length: AUDIT_EXPORT_MAX_ROWS + 1 }, (_, i) => ({
        at: T0 - HOUR - (AUDIT_EXPORT_MAX_ROWS + 1 - i),
        type: 'reset_email_sent',
        actor_id: null,
        actor_label: null,
        target_id: null,
        target_label: `bulk${i}`,
        ip: null,
        outcome: 'success' as const,
        detail: null,
      }));
      for (let i = 0; i < rows.length; i += 2000) await ctx.db.insertInto('audit_events').values(rows.slice(i, i + 2000)).execute();
      const res = await get('/api/audit/export.csv?type=reset_email_sent');
      expect(res.statusCode).toBe(200);
      expect(res.headers['gatehouse-export-truncated']).toBe('true');
      expect(res.headers['gatehouse-export-rows']).toBe(String(AUDIT_EXPORT_MAX_ROWS));
      const csv = parseCsv(res.body);
      expect(csv).toHaveLength(AUDIT_EXPORT_MAX_ROWS + 1);
      expect(csv[1]![5]).toBe(`bulk${AUDIT_EXPORT_MAX_ROWS}`);
      expect(csv.at(-1)![5]).toBe('bulk1');
      const ids = csv.slice(1).map((r) => Number(r[0]));
      expect(ids.every((id, i) => i === 0 || id < ids[i - 1]!)).toBe(true);
    }, 120_000);
  });
}
