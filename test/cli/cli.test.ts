import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/index.js';
import { assertBuilt, runCli, startServer, tempDataDir } from '../helpers/cli.js';

const PASSWORD = 'correct horse battery staple';

beforeAll(() => assertBuilt());

describe('gatehouse command line', () => {
  let dataDir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dataDir = tempDataDir();
    env = { DATA_DIR: dataDir };
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('prints usage with --help and exits 2 without a command or with an unknown one', async () => {
    const help = await runCli(['--help'], { env });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('users create');
    const none = await runCli([], { env });
    expect(none.code).toBe(2);
    const unknown = await runCli(['frobnicate'], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toContain('unknown command');
  });

  it('migrates, then says the database is up to date', async () => {
    const first = await runCli(['migrate'], { env });
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('0001_initial');
    const second = await runCli(['migrate'], { env });
    expect(second).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
  });

  it('creates a user with the password from stdin, one trailing newline stripped', async () => {
    const res = await runCli(['users', 'create', '--email', 'ops@example.com', '--name', 'Ops', '--role', 'system-admin'], { env, input: `${PASSWORD}\n` });
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('created user ops@example.com (system-admin)');
    // Like the Users page, the CLI leaves a user_created row in the audit.
    const db = createDb({ kind: 'sqlite', file: path.join(dataDir, 'gatehouse.sqlite') });
    try {
      const created = await db.selectFrom('audit_events').select(['target_label', 'detail']).where('type', '=', 'user_created').execute();
      expect(created).toEqual([{ target_label: 'ops@example.com', detail: JSON.stringify({ role: 'system-admin', via: 'cli' }) }]);
    } finally {
      await db.destroy();
    }
    const dup = await runCli(['users', 'create', '--email', 'OPS@example.com', '--name', 'Ops', '--role', 'user'], { env, input: PASSWORD });
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe('gatehouse: Another user has this email.\n');
  });

  it('refuses bad arguments with exit 2 and a weak password with exit 1, one line each', async () => {
    for (const args of [
      ['users', 'create', '--email', 'x@example.com', '--role', 'user'],
      ['users', 'create', '--email', 'x@example.com', '--name', 'X', '--role', 'owner'],
      ['users', 'create', '--email', 'not-an-address', '--name', 'X', '--role', 'user'],
      ['users', 'create', '--name', 'X', '--role', 'user'],
      ['users', 'create', '--bogus', 'y', '--name', 'X', '--role', 'user'],
      ['users', 'set-password'],
      ['secrets', 'get'],
      ['secrets', 'get', 'bad_name!'],
    ]) {
      const res = await runCli(args, { env, input: PASSWORD });
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    const weak = await runCli(['users', 'create', '--username', 'weakling', '--name', 'W', '--role', 'user'], { env, input: 'zq8-Wv\n' });
    expect(weak.code).toBe(1);
    expect(weak.stderr).toMatch(/^gatehouse: Use at least 15 characters\.\n$/);
  });

  it('keeps secrets in the local store: set from stdin, get, list, delete', async () => {
    expect((await runCli(['secrets', 'set', 'smtp-password'], { env, input: 's3cret value\n' })).code).toBe(0);
    const got = await runCli(['secrets', 'get', 'smtp-password'], { env });
    expect(got).toMatchObject({ code: 0, stdout: 's3cret value\n' });
    const raw = fs.readFileSync(path.join(dataDir, 'secrets.enc.json'), 'utf8');
    expect(raw).not.toContain('s3cret');
    expect((await runCli(['secrets', 'list'], { env })).stdout).toContain('smtp-password\n');
    expect((await runCli(['secrets', 'delete', 'smtp-password'], { env })).code).toBe(0);
    const gone = await runCli(['secrets', 'get', 'smtp-password'], { env });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe('gatehouse: no secret named "smtp-password"\n');
  });

  it('saves a secret whose name email settings cannot use, with one note on stderr naming MAIL_SECRET_NAME_PATTERN', async () => {
    const other = await runCli(['secrets', 'set', 'billing-db-password'], { env, input: 'db pass\n' });
    expect(other).toEqual({
      code: 0,
      stdout: 'secret billing-db-password saved\n',
      stderr: 'note: email settings can only use secrets whose names match ^(smtp|mail)- (MAIL_SECRET_NAME_PATTERN)\n',
    });
    expect((await runCli(['secrets', 'get', 'billing-db-password'], { env })).stdout).toBe('db pass\n');
    expect((await runCli(['secrets', 'set', 'mail-from'], { env, input: 'ops@example.com\n' })).stderr).toBe('');
    const custom = await runCli(['secrets', 'set', 'mail-from'], { env: { ...env, MAIL_SECRET_NAME_PATTERN: '^outbound-' }, input: 'ops@example.com\n' });
    expect(custom).toMatchObject({ code: 0, stderr: 'note: email settings can only use secrets whose names match ^outbound- (MAIL_SECRET_NAME_PATTERN)\n' });
  });

  it('refuses to write to a read-only provider and reads the env provider', async () => {
    const ro = { ...env, SECRETS_PROVIDER: 'env', GATEHOUSE_SECRET_SMTP_USER: 'mailer@example.com' };
    const set = await runCli(['secrets', 'set', 'x'], { env: ro, input: 'v' });
    expect(set.code).toBe(1);
    expect(set.stderr).toContain('read-only');
    expect((await runCli(['secrets', 'get', 'smtp-user'], { env: ro })).stdout).toBe('mailer@example.com\n');
  });

  it('stops on invalid configuration with one message listing every bad variable', async () => {
    const res = await runCli(['migrate'], { env: { ...env, PORT: 'abc', SECRETS_PROVIDER: 'vault', PASSWORD_MIN_LENGTH: '4' } });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('PORT');
    expect(res.stderr).toContain('SECRETS_PROVIDER');
    expect(res.stderr).toContain('PASSWORD_MIN_LENGTH');
  });
});

describe('gatehouse serve with the CLI beside it', () => {
  it('does not generate admin when a user exists, and the CLI works while the server runs', async () => {
    const dataDir = tempDataDir();
    const env = { DATA_DIR: dataDir };
    await runCli(['users', 'create', '--username', 'boss', '--name', 'Boss', '--role', 'system-admin'], { env, input: PASSWORD });
    const server = await startServer(env);
    try {
      expect(server.stdout()).not.toContain('first start');
      const created = await runCli(['users', 'create', '--username', 'late', '--name', 'Late', '--role', 'user'], { env, input: PASSWORD });
      expect(created.code).toBe(0);
      const login = await fetch(`${server.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ login: 'late', password: PASSWORD }),
      });
      expect(login.status).toBe(200);
      const reset = await runCli(['users', 'set-password', '--login', 'late'], { env, input: 'a brand new passphrase here\n' });
      expect(reset.code).toBe(0);
      const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
      const me = await fetch(`${server.url}/api/auth/me`, { headers: { cookie } });
      expect(me.status).toBe(401);
    } finally {
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
