import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { createDb, migrateToLatest, type Db } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';
import { seededRandom, type Random } from '../../src/random.js';
import { createArgon2Hasher } from '../../src/accounts/passwords.js';
import { checkPassword } from '../../src/accounts/policy.js';
import { TEMP_ADMIN_SECRET, ensureFirstAdmin } from '../../src/accounts/first-admin.js';
import { createUser } from '../../src/accounts/service.js';
import { countUsers, findUserByUsername, listUsers } from '../../src/accounts/users-repo.js';
import { createEnvSecretStore } from '../../src/secrets/env.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { makeTestApp, signIn, OTHER_STRONG_PASSWORD } from '../helpers/app.js';

type Deps = Parameters<typeof ensureFirstAdmin>[0];

let db: Db;
beforeEach(async () => {
  db = createDb({ kind: 'sqlite', file: ':memory:' });
  await migrateToLatest(db);
});
afterEach(async () => {
  await db.destroy();
});

/**
 * Seeded randomness that gives up after many draws: a generator that can never satisfy the
 * policy would otherwise spin forever inside one synchronous loop and hang the test run.
 */
function boundedRandom(seed: number, maxDraws = 1000): Random {
  const inner = seededRandom(seed);
  let draws = 0;
  return {
    bytes(length) {
      if (++draws > maxDraws) throw new Error(`drew random bytes ${maxDraws} times without producing an acceptable password`);
      return inner.bytes(length);
    },
    uuid: () => inner.uuid(),
  };
}

function makeDeps(options: { env?: Record<string, string>; secrets?: SecretStore } = {}): Deps {
  return {
    db,
    clock: new FakeClock('2026-03-01T12:00:00.000Z'),
    random: boundedRandom(42),
    hasher: createArgon2Hasher(),
    config: loadConfig(options.env ?? {}),
    secrets: options.secrets ?? createMemorySecretStore(),
    logger: createLogger('silent'),
  };
}

describe('ensureFirstAdmin', () => {
  it('creates admin (no email, system-admin, must change password) on an empty database', async () => {
    const deps = makeDeps();
    const result = await ensureFirstAdmin(deps);
    expect(result).toEqual({ created: true, password: expect.any(String), storedInSecrets: true });
    const users = await listUsers(db);
    expect(users).toHaveLength(1);
    expect(users[0]).toMatchObject({ username: 'admin', email: null, role: 'system-admin', must_change_password: 1, disabled: 0 });
  });

  it('generates a password that passes the policy and is the one stored in the hash', async () => {
    const deps = makeDeps();
    const result = await ensureFirstAdmin(deps);
    if (!result.created) throw new Error('admin not created');
    expect(checkPassword(result.password, deps.config.passwordMinLength, { username: 'admin' })).toEqual([]);
    const admin = await findUserByUsername(db, 'admin');
    expect(await deps.hasher.verify(admin!.password_hash!, result.password)).toBe(true);
  });

  it('keeps the temporary password in the secret store as tempAdminPassword', async () => {
    const secrets = createMemorySecretStore();
    const result = await ensureFirstAdmin(makeDeps({ secrets }));
    if (!result.created) throw new Error('admin not created');
    expect(TEMP_ADMIN_SECRET).toBe('tempAdminPassword');
    expect(await secrets.get('tempAdminPassword')).toBe(result.password);
  });

  it('creates nothing on the second call', async () => {
    const secrets = createMemorySecretStore();
    const first = await ensureFirstAdmin(makeDeps({ secrets }));
    const stored = await secrets.get(TEMP_ADMIN_SECRET);
    expect(await ensureFirstAdmin(makeDeps({ secrets }))).toEqual({ created: false });
    expect(await countUsers(db)).toBe(1);
    expect(first.created).toBe(true);
    expect(await secrets.get(TEMP_ADMIN_SECRET)).toBe(stored);
  });

  it('creates no admin when a user was created first, e.g. by the CLI', async () => {
    const secrets = createMemorySecretStore();
    const deps = makeDeps({ secrets });
    await createUser(deps, { email: 'ops@example.com', username: null, name: 'Ops', role: 'system-admin', password: 'correct horse battery staple' });
    expect(await ensureFirstAdmin(deps)).toEqual({ created: false });
    expect(await findUserByUsername(db, 'admin')).toBeUndefined();
    expect(await secrets.list()).toEqual([]);
  });

  it('still creates the admin when the secret store is read-only, and says the password was not stored', async () => {
    const secrets = createEnvSecretStore({});
    const result = await ensureFirstAdmin(makeDeps({ secrets }));
    expect(result).toEqual({ created: true, password: expect.any(String), storedInSecrets: false });
    expect(await findUserByUsername(db, 'admin')).toMatchObject({ role: 'system-admin', must_change_password: 1 });
  });

  it('generates a password long enough for any allowed PASSWORD_MIN_LENGTH', async () => {
    for (const min of ['24', '25', '40', '128']) {
      await db.deleteFrom('users').execute();
      const deps = makeDeps({ env: { PASSWORD_MIN_LENGTH: min } });
      const result = await ensureFirstAdmin(deps);
      if (!result.created) throw new Error('admin not created');
      expect([...result.password].length, `PASSWORD_MIN_LENGTH=${min}`).toBeGreaterThanOrEqual(Number(min));
      expect(checkPassword(result.password, Number(min), { username: 'admin' })).toEqual([]);
    }
  });
});

describe('the forced first change', () => {
  it('deletes tempAdminPassword from the secret store once it succeeds, and not before', async () => {
    const secrets = createMemorySecretStore();
    const db2 = createDb({ kind: 'sqlite', file: ':memory:' });
    const ctx = await makeTestApp({ db: db2, deps: { secrets } });
    try {
      const result = await ensureFirstAdmin({ ...ctx.deps, random: boundedRandom(7) });
      if (!result.created) throw new Error('admin not created');
      const cookie = await signIn(ctx, 'admin', result.password);
      const change = (currentPassword: string) =>
        ctx.app.inject({ method: 'POST', url: '/api/auth/change-password', headers: { cookie }, payload: { currentPassword, newPassword: OTHER_STRONG_PASSWORD } });
      expect((await change('not the temporary password')).statusCode).toBe(400);
      expect(await secrets.get(TEMP_ADMIN_SECRET)).toBe(result.password);
      expect((await change(result.password)).statusCode).toBe(204);
      expect(await secrets.get(TEMP_ADMIN_SECRET)).toBeUndefined();
    } finally {
      await ctx.close();
      await db2.destroy();
    }
  });
});
