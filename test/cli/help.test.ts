import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli, tempDataDir } from '../helpers/cli.js';

beforeAll(() => assertBuilt());

/** Every command and sub-command, with the options its usage must name. */
const COMMANDS: Array<{ path: string[]; names: string[] }> = [
  { path: ['serve'], names: [] },
  { path: ['migrate'], names: [] },
  { path: ['users'], names: ['create', 'set-password', 'unlock'] },
  { path: ['users', 'create'], names: ['--email', '--username', '--name', '--role', 'system-admin', 'stdin'] },
  { path: ['users', 'set-password'], names: ['--login', 'stdin'] },
  { path: ['users', 'unlock'], names: ['--login'] },
  { path: ['secrets'], names: ['set', 'get', 'list', 'delete'] },
  { path: ['secrets', 'set'], names: ['NAME', 'stdin'] },
  { path: ['secrets', 'get'], names: ['NAME'] },
  { path: ['secrets', 'list'], names: [] },
  { path: ['secrets', 'delete'], names: ['NAME'] },
  { path: ['mail'], names: ['test'] },
  { path: ['mail', 'test'], names: ['--to'] },
];

describe('gatehouse --help', () => {
  let dataDir: string;
  let env: Record<string, string>;
  const printed = new Map<string, string>();
  beforeAll(() => {
    dataDir = tempDataDir();
    env = { DATA_DIR: dataDir };
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it.each([['--help'], ['-h'], ['help']])('gatehouse %s prints the list of commands on stdout and exits 0', async (flag) => {
    const res = await runCli([flag], { env });
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    expect(res.stdout.split('\n')[0]).toBe('Usage: gatehouse <command>');
    for (const name of ['serve', 'migrate', 'users create', 'users set-password', 'users unlock', 'secrets set', 'list', 'mail test']) expect(res.stdout).toContain(name);
    expect(res.stdout).toContain('--help');
  });

  it.each(COMMANDS.map((c) => ({ ...c, command: c.path.join(' ') })))('gatehouse $command --help and -h print its own usage on stdout and exit 0', async ({ path, names }) => {
    // Input that would be taken for a password or secret value if the command ran.
    const [long, short] = await Promise.all([runCli([...path, '--help'], { env, input: 'a password on stdin\n' }), runCli([...path, '-h'], { env })]);
    expect(long).toEqual(short);
    expect(long.code).toBe(0);
    expect(long.stderr).toBe('');
    expect(long.stdout.startsWith(`Usage: gatehouse ${path.join(' ')}`)).toBe(true);
    for (const name of names) expect(long.stdout).toContain(name);
    printed.set(path.join(' '), long.stdout);
  });

  it('gives each command a usage of its own', () => {
    expect(printed.size).toBe(COMMANDS.length);
    expect(new Set(printed.values()).size).toBe(COMMANDS.length);
  });

  it('answers --help wherever it stands among the options, and `gatehouse help <command>` alike', async () => {
    const among = await runCli(['users', 'create', '--email', 'x@example.com', '--help', '--role', 'user'], { env, input: 'a password on stdin\n' });
    expect(among).toEqual({ code: 0, stdout: printed.get('users create'), stderr: '' });
    const viaHelp = await runCli(['help', 'users', 'create'], { env });
    expect(viaHelp).toEqual({ code: 0, stdout: printed.get('users create'), stderr: '' });
    const group = await runCli(['help', 'secrets'], { env });
    expect(group).toEqual({ code: 0, stdout: printed.get('secrets'), stderr: '' });
  });

  it('does nothing else: no database, no secret store, no user', () => {
    expect(fs.readdirSync(dataDir)).toEqual([]);
  });

  it('still refuses an unknown sub-command with exit 2 and one line', async () => {
    for (const args of [['users', 'frobnicate', '--help'], ['secrets'], ['mail', 'send'], ['help', 'frobnicate']]) {
      const res = await runCli(args, { env });
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stdout, args.join(' ')).toBe('');
      expect(res.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});
