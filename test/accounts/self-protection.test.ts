import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ACCOUNT_ERROR_CODES } from '../../src/accounts/errors.js';
import { STATUS_OF_CODE } from '../../src/http/errors.js';
import { addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';

// An admin never takes their own rights away: deleting, demoting or disabling yourself is refused
// with a code of its own, before the last-admin rule is even asked. Another admin may do it.

let ctx: TestContext;
let rootId: string;
let root: string;
beforeEach(async () => {
  ctx = await makeTestApp();
  rootId = (await addUser(ctx, { username: 'root', email: 'root@example.com', name: 'Rita Root', role: 'system-admin' })).id;
  root = await signIn(ctx, 'root');
});
afterEach(async () => {
  await ctx.close();
});

const call = (method: 'GET' | 'PATCH' | 'DELETE', url: string, cookie: string, payload?: object) =>
  ctx.app.inject({ method, url, headers: { cookie }, ...(payload === undefined ? {} : { payload }) });

const SELF_REFUSALS = [
  ['PATCH', { role: 'user' }, 'cannot_demote_self', 'You cannot change your own role. Another system admin can.'],
  ['PATCH', { disabled: true }, 'cannot_disable_self', 'You cannot disable your own account. Another system admin can.'],
  ['PATCH', { name: 'Still Me', role: 'user' }, 'cannot_demote_self', 'You cannot change your own role. Another system admin can.'],
  ['DELETE', undefined, 'cannot_delete_self', 'You cannot delete your own account. Another system admin can.'],
] as const;

describe('an admin acting on their own account', () => {
  it('declares the three codes, each answered 409', () => {
    for (const code of ['cannot_delete_self', 'cannot_demote_self', 'cannot_disable_self']) {
      expect(ACCOUNT_ERROR_CODES).toContain(code);
      expect(STATUS_OF_CODE[code], code).toBe(409);
    }
  });

  it('is refused with its own code, not last_admin, when they are the only admin — and nothing changes', async () => {
    for (const [method, body, code, message] of SELF_REFUSALS) {
      const res = await call(method, `/api/users/${rootId}`, root, body);
      expect(res.statusCode, code).toBe(409);
      expect(res.json()).toEqual({ error: code, message });
    }
    const row = await ctx.db.selectFrom('users').select(['name', 'role', 'disabled']).where('id', '=', rootId).executeTakeFirstOrThrow();
    expect(row).toEqual({ name: 'Rita Root', role: 'system-admin', disabled: 0 });
    // Still signed in, and nothing was audited as done.
    expect((await call('GET', '/api/auth/me', root)).statusCode).toBe(200);
    const types = (await ctx.db.selectFrom('audit_events').select('type').execute()).map((e) => e.type);
    expect(types).not.toContain('user_updated');
    expect(types).not.toContain('user_deleted');
  });

  it('is refused the same while another enabled admin remains', async () => {
    await addUser(ctx, { username: 'second', name: 'Sam Second', role: 'system-admin' });
    for (const [method, body, code] of SELF_REFUSALS) {
      const res = await call(method, `/api/users/${rootId}`, root, body);
      expect(res.statusCode, code).toBe(409);
      expect(res.json().error).toBe(code);
    }
    expect(await ctx.db.selectFrom('users').select('id').where('id', '=', rootId).executeTakeFirst()).toBeDefined();
  });

  it('may still rename themselves, change their email and send their role or enabled state unchanged', async () => {
    const res = await call('PATCH', `/api/users/${rootId}`, root, { name: 'Rita R.', email: 'rita@example.com', role: 'system-admin', disabled: false });
    expect(res.statusCode).toBe(200);
    expect(res.json().user).toMatchObject({ name: 'Rita R.', email: 'rita@example.com', role: 'system-admin', disabled: false });
    expect((await call('GET', '/api/auth/me', root)).statusCode).toBe(200);
  });

  it('leaves it to another admin, who may demote, disable and delete them', async () => {
    const sam = await addUser(ctx, { username: 'second', name: 'Sam Second', role: 'system-admin' });
    const second = await signIn(ctx, 'second');
    const demoted = await call('PATCH', `/api/users/${rootId}`, second, { role: 'user' });
    expect(demoted.statusCode).toBe(200);
    expect(demoted.json().user.role).toBe('user');
    expect((await call('PATCH', `/api/users/${rootId}`, second, { disabled: true })).json().user.disabled).toBe(true);
    expect((await call('DELETE', `/api/users/${rootId}`, second)).statusCode).toBe(204);
    // And Sam, now the last admin, meets the self rule first.
    const self = await call('DELETE', `/api/users/${sam.id}`, second);
    expect(self.json().error).toBe('cannot_delete_self');
  });
});
