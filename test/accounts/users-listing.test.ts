import { afterAll, beforeAll, expect, it } from 'vitest';
import { insertUser } from '../../src/accounts/users-repo.js';
import { addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { bothDialects, postgresSuite, type DialectDb } from '../helpers/pg.js';

// GET /api/users: search, role and status filters, and keyset paging by name, on SQLite and
// PostgreSQL alike; the old call without parameters still answers every user.

const describeOnPostgres = await postgresSuite();

interface Listed {
  users: { id: string; name: string; email: string | null; username: string | null; role: string; disabled: boolean; locked: boolean }[];
  total?: number;
  nextCursor?: string;
}

for (const [dialect, openDb, describeIt] of bothDialects(describeOnPostgres, 'gh-users-listing-')) {
  describeIt(`GET /api/users on ${dialect}`, () => {
    let dbh: DialectDb;
    let ctx: TestContext;
    let admin: string;
    let seq = 0;
    /** ids in the order they were added */
    const created: string[] = [];

    async function seed(fields: { name: string; email?: string | null; username?: string | null; role?: 'system-admin' | 'user'; noPassword?: boolean }) {
      seq += 1;
      const id = `u-${String(seq).padStart(3, '0')}`;
      await insertUser(ctx.db, {
        id,
        email: fields.email ?? null,
        username: fields.username ?? (fields.email ? null : `user${seq}`),
        name: fields.name,
        role: fields.role ?? 'user',
        passwordHash: fields.noPassword ? null : '$argon2id$fake',
        mustChangePassword: false,
        nowMs: ctx.clock.now().getTime() + seq * 1000,
      });
      created.push(id);
      return id;
    }

    const get = async (query: string): Promise<{ status: number; body: Listed & { error?: string; fields?: Record<string, string> } }> => {
      const res = await ctx.app.inject({ method: 'GET', url: `/api/users${query}`, headers: { cookie: admin } });
      return { status: res.statusCode, body: res.json() };
    };
    const names = (body: Listed) => body.users.map((u) => u.name);

    beforeAll(async () => {
      dbh = await openDb();
      ctx = await makeTestApp({ db: dbh.db });
      // The admin is the oldest account: created before every seeded one.
      created.push((await addUser(ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' })).id);
      admin = await signIn(ctx, 'root');
      await seed({ name: 'Ann Alpha', email: 'ann@example.com' });
      await seed({ name: 'bob beta', username: 'Bobby' });
      await seed({ name: 'Carla Chief', email: 'carla@corp.example', role: 'system-admin' });
      const dan = await seed({ name: 'Dan Disabled', email: 'dan@example.com' });
      const lena = await seed({ name: 'Lena Locked', username: 'lena' });
      const mia = await seed({ name: 'Mia Mustchange', email: 'mia@example.com' });
      await seed({ name: 'Nora Nopass', email: 'nora@example.com', noPassword: true });
      await seed({ name: 'Percent 100% Sure', username: 'pct' });
      await seed({ name: 'Under_score', username: 'under' });
      await seed({ name: 'Zed Zulu', email: 'ZED@Example.COM' });
      await ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', dan).execute();
      await ctx.db.updateTable('users').set({ locked_at: Date.now(), failed_login_count: 100 }).where('id', '=', lena).execute();
      await ctx.db.updateTable('users').set({ must_change_password: 1 }).where('id', '=', mia).execute();
      for (let i = 1; i <= 25; i++) await seed({ name: `Bulk ${String(i).padStart(2, '0')}`, email: `bulk${i}@bulk.example` });
    });
    afterAll(async () => {
      await ctx?.close();
      await dbh?.drop();
    });

    it('answers the old call (no parameters) with every user, oldest first, and the total', async () => {
      const { status, body } = await get('');
      expect(status).toBe(200);
      expect(body.users.map((u) => u.id)).toEqual(created);
      expect(body.total).toBe(created.length);
      expect(body.nextCursor).toBeUndefined();
    });

    it('searches name, email and username, in any case, taking % and _ literally', async () => {
      expect(names((await get('?q=ann')).body)).toEqual(['Ann Alpha']);
      expect(names((await get('?q=ALPHA')).body)).toEqual(['Ann Alpha']);
      // the username, stored as typed ("Bobby"), found in lower case
      expect(names((await get('?q=bobby')).body)).toEqual(['bob beta']);
      // the email, stored in mixed case
      expect(names((await get('?q=zed%40example.com')).body)).toEqual(['Zed Zulu']);
      expect(names((await get('?q=corp.EXAMPLE')).body)).toEqual(['Carla Chief']);
      expect(names((await get('?q=%25')).body)).toEqual(['Percent 100% Sure']);
      expect(names((await get('?q=_')).body)).toEqual(['Under_score']);
      const none = (await get('?q=nobody-has-this')).body;
      expect(none).toEqual({ users: [], total: 0 });
      // surrounding spaces are ignored; an empty search matches everyone
      expect(names((await get('?q=%20%20lena%20')).body)).toEqual(['Lena Locked']);
      expect((await get('?q=&limit=200')).body.total).toBe(created.length);
    });

    it('filters by role and by status, and combines filters with the search', async () => {
      expect(names((await get('?role=system-admin')).body)).toEqual(['Carla Chief', 'Rita Root']);
      const users = (await get('?role=user&limit=200')).body;
      expect(users.total).toBe(created.length - 2);
      expect(users.users.every((u) => u.role === 'user')).toBe(true);
      expect(names((await get('?status=disabled')).body)).toEqual(['Dan Disabled']);
      const locked = (await get('?status=locked')).body;
      expect(names(locked)).toEqual(['Lena Locked']);
      expect(locked.users[0]!.locked).toBe(true);
      expect(names((await get('?status=must_change_password')).body)).toEqual(['Mia Mustchange']);
      expect(names((await get('?status=no_password')).body)).toEqual(['Nora Nopass']);
      const active = (await get('?status=active&limit=200')).body;
      expect(active.total).toBe(created.length - 2);
      expect(names(active)).not.toContain('Dan Disabled');
      expect(names(active)).not.toContain('Lena Locked');
      expect(names((await get('?q=example.com&role=user&status=active&limit=200')).body)).toEqual([
        'Ann Alpha',
        'Mia Mustchange',
        'Nora Nopass',
        'Zed Zulu',
      ]);
      expect((await get('?q=ann&role=system-admin')).body).toEqual({ users: [], total: 0 });
    });

    it('orders by name in any case and pages with nextCursor, defaulting to 50', async () => {
      const all = (await get('?limit=200')).body;
      expect(all.total).toBe(created.length);
      expect(all.nextCursor).toBeUndefined();
      // "bob beta" among the B's, not after "Zed Zulu"
      expect(names(all).slice(0, 3)).toEqual(['Ann Alpha', 'bob beta', 'Bulk 01']);
      expect(names(all).at(-1)).toBe('Zed Zulu');

      const first = (await get('?q=bulk&limit=10')).body;
      expect(first.total).toBe(25);
      expect(names(first)).toEqual(Array.from({ length: 10 }, (_, i) => `Bulk ${String(i + 1).padStart(2, '0')}`));
      expect(first.nextCursor).toMatch(/^[\w-]+$/);
      const second = (await get(`?q=bulk&limit=10&after=${first.nextCursor}`)).body;
      expect(names(second)[0]).toBe('Bulk 11');
      // A user added meanwhile before the cursor neither repeats a row nor shifts the next page.
      const early = await seed({ name: 'Bulk 00', email: 'bulk0@bulk.example' });
      try {
        const third = (await get(`?q=bulk&limit=10&after=${second.nextCursor}`)).body;
        expect(names(third)).toEqual(['Bulk 21', 'Bulk 22', 'Bulk 23', 'Bulk 24', 'Bulk 25']);
        expect(third.nextCursor).toBeUndefined();
        expect(third.total).toBe(26);
      } finally {
        await ctx.db.deleteFrom('users').where('id', '=', early).execute();
        created.pop();
      }

      // Without limit a page holds 50.
      const paged = (await get('?q=')).body;
      expect(paged.users).toHaveLength(created.length < 50 ? created.length : 50);
      expect(paged.total).toBe(created.length);
    });

    it('documents the parameters and the new keys in the OpenAPI document', async () => {
      const doc = (await ctx.app.inject({ method: 'GET', url: '/api/openapi.json' })).json();
      const op = doc.paths['/api/users'].get;
      expect(op.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`).sort()).toEqual(['query:after', 'query:limit', 'query:q', 'query:role', 'query:status']);
      const listed = op.responses['200'].content['application/json'].schema.properties;
      expect(Object.keys(listed)).toEqual(['users', 'total', 'nextCursor']);
    });

    it('answers bad parameters with 400 invalid_request naming the parameter', async () => {
      const garbageCursor = Buffer.from('{"not":"a cursor"}').toString('base64url');
      const cases: [string, string][] = [
        ['?limit=0', 'limit'],
        ['?limit=201', 'limit'],
        ['?limit=abc', 'limit'],
        ['?limit=-1', 'limit'],
        ['?role=owner', 'role'],
        ['?status=gone', 'status'],
        ['?after=!!!', 'after'],
        [`?after=${garbageCursor}`, 'after'],
        ['?sort=name', 'sort'],
        [`?q=${'x'.repeat(201)}`, 'q'],
      ];
      for (const [query, field] of cases) {
        const { status, body } = await get(query);
        expect(status, query).toBe(400);
        expect(body.error, query).toBe('invalid_request');
        expect(Object.keys(body.fields ?? {}), query).toContain(field);
      }
      expect((await get('?limit=200')).status).toBe(200);
      expect((await get('?limit=1')).body.users).toHaveLength(1);
    });
  });
}
