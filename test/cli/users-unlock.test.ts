import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../../src/db/index.js';
import { assertBuilt, runCli, startServer, tempDataDir } from '../helpers/cli.js';

const PASSWORD = 'correct horse battery staple';
const LOCKED_MESSAGE = 'Too many failed sign-ins — reset your password, or ask an admin.';

beforeAll(() => assertBuilt());

describe('gatehouse users unlock', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let db: Db;

  beforeAll(async () => {
    dataDir = tempDataDir();
    env = { DATA_DIR: dataDir };
    const created = await runCli(['users', 'create', '--username', 'lou', '--email', 'lou@example.com', '--name', 'Lou Lockout', '--role', 'user'], {
      env,
      input: `${PASSWORD}\n`,
    });
    expect(created.code).toBe(0);
    db = createDb({ kind: 'sqlite', file: path.join(dataDir, 'gatehouse.sqlite') });
  });
  afterAll(async () => {
    await db?.destroy();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** What 100 failed sign-ins from untrusted browsers leave on the account. */
  async function lock(username: string): Promise<void> {
    await db.updateTable('users').set({ failed_login_count: 100, locked_at: Date.now() }).where('username', '=', username).execute();
  }

  async function unlockEvents(): Promise<Array<{ actor_label: string | null; target_label: string | null; outcome: string; detail: string | null }>> {
    return db.selectFrom('audit_events').select(['actor_label', 'target_label', 'outcome', 'detail']).where('type', '=', 'account_unlocked').orderBy('id').execute();
  }

  it('lifts the lock while the server runs on the same data, clears the failure count and writes an account_unlocked audit row', async () => {
    await lock('lou');
    const server = await startServer(env);
    const signIn = () =>
      fetch(`${server.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: 'lou', password: PASSWORD }),
      });
    try {
      // The lock is real: the right password from a browser that never signed in is refused.
      const refused = await signIn();
      expect(refused.status).toBe(403);
      expect(await refused.json()).toEqual({ error: 'sign_in_locked', message: LOCKED_MESSAGE });

      const res = await runCli(['users', 'unlock', '--login', 'lou'], { env });
      expect(res).toEqual({ code: 0, stdout: 'lou is unlocked\n', stderr: '' });
      expect(await db.selectFrom('users').select(['locked_at', 'failed_login_count']).where('username', '=', 'lou').executeTakeFirstOrThrow()).toEqual({
        locked_at: null,
        failed_login_count: 0,
      });
      expect(await unlockEvents()).toEqual([{ actor_label: null, target_label: 'lou', outcome: 'success', detail: JSON.stringify({ via: 'cli' }) }]);

      expect((await signIn()).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it('finds the account by its email as well', async () => {
    await lock('lou');
    const res = await runCli(['users', 'unlock', '--login', 'LOU@example.com'], { env });
    expect(res).toEqual({ code: 0, stdout: 'lou is unlocked\n', stderr: '' });
    expect((await db.selectFrom('users').select('locked_at').where('username', '=', 'lou').executeTakeFirstOrThrow()).locked_at).toBeNull();
    expect(await unlockEvents()).toHaveLength(2);
  });

  it('exits 1 with one line on stderr for an unknown login, and 2 without --login, unlocking and auditing nothing', async () => {
    await lock('lou');
    const unknown = await runCli(['users', 'unlock', '--login', 'nobody'], { env });
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: 'gatehouse: no user with login "nobody"\n' });
    const missing = await runCli(['users', 'unlock'], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect((await db.selectFrom('users').select('locked_at').where('username', '=', 'lou').executeTakeFirstOrThrow()).locked_at).not.toBeNull();
    expect(await unlockEvents()).toHaveLength(2);
  });
});
