import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import {
  createLocalSecretStore,
  createSecretStore,
  InvalidSecretNameError,
  SecretStoreUnavailableError,
} from '../../src/secrets/index.js';

const SECRETS_FILE = 'secrets.enc.json';
const KEY_FILE = 'secrets.key';

let root: string;
let dataDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'gatehouse-secrets-'));
  // A directory that does not exist yet: the store must create it.
  dataDir = join(root, 'data');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function readStoreJson(): Promise<{
  version: number;
  secrets: Record<string, { iv: string; tag: string; data: string }>;
}> {
  return JSON.parse(await readFile(join(dataDir, SECRETS_FILE), 'utf8'));
}

describe('local secret store', () => {
  it('returns what was set, and undefined for a name never set', async () => {
    const store = createLocalSecretStore({ dataDir });
    expect(await store.get('smtp-password')).toBeUndefined();
    await store.set('smtp-password', 'correct horse battery staple ✓');
    expect(await store.get('smtp-password')).toBe('correct horse battery staple ✓');
    expect(await store.get('smtp-user')).toBeUndefined();
  });

  it('treats names case-insensitively, as Azure Key Vault does', async () => {
    const store = createLocalSecretStore({ dataDir });
    await store.set('tempAdminPassword', 'first');
    expect(await store.get('TEMPADMINPASSWORD')).toBe('first');
    await store.set('TempAdminPassword', 'second');
    expect(await store.get('tempadminpassword')).toBe('second');
    expect(await store.list()).toEqual(['TempAdminPassword']);
  });

  it('never writes a value in plain text, and gives each entry its own IV', async () => {
    const store = createLocalSecretStore({ dataDir });
    const value = 'PlainTextMustNotAppear-1234567890';
    await store.set('smtp-password', value);
    await store.set('other', value);
    const raw = await readFile(join(dataDir, SECRETS_FILE), 'utf8');
    expect(raw).not.toContain(value);
    expect(raw).not.toContain(Buffer.from(value).toString('base64'));
    const file = await readStoreJson();
    expect(file.version).toBe(1);
    expect(file.secrets['smtp-password']!.iv).not.toBe(file.secrets.other!.iv);
    expect(Buffer.from(file.secrets.other!.iv, 'base64')).toHaveLength(12);
  });

  it('creates the data directory (0700) and a 0600 key file holding 32 random bytes on first write', async () => {
    const store = createLocalSecretStore({ dataDir });
    await store.set('a', 'b');
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dataDir, KEY_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dataDir, SECRETS_FILE))).mode & 0o777).toBe(0o600);
    const key = Buffer.from((await readFile(join(dataDir, KEY_FILE), 'utf8')).trim(), 'base64');
    expect(key).toHaveLength(32);
  });

  it('creates nothing on reads of an empty store', async () => {
    const store = createLocalSecretStore({ dataDir });
    expect(await store.get('anything')).toBeUndefined();
    expect(await store.list()).toEqual([]);
    await store.delete('anything');
    await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('uses a key given as SECRETS_KEY and makes no key file', async () => {
    const key = randomBytes(32);
    await createLocalSecretStore({ dataDir, key }).set('smtp-password', 'v');
    expect(await readdir(dataDir)).not.toContain(KEY_FILE);
    expect(await createLocalSecretStore({ dataDir, key }).get('smtp-password')).toBe('v');
  });

  it('refuses a SECRETS_KEY that is not 32 bytes', () => {
    expect(() => createLocalSecretStore({ dataDir, key: randomBytes(16) })).toThrow(/32 bytes/);
  });

  it('reports a wrong key as SecretStoreUnavailableError on every operation, without leaking the value', async () => {
    await createLocalSecretStore({ dataDir, key: randomBytes(32) }).set('smtp-password', 'the-value');
    const wrong = createLocalSecretStore({ dataDir, key: randomBytes(32) });
    for (const attempt of [
      () => wrong.get('smtp-password'),
      () => wrong.list(),
      () => wrong.set('another', 'x'),
      () => wrong.delete('smtp-password'),
    ]) {
      const error = await attempt().then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(SecretStoreUnavailableError);
      expect((error as Error).message).toMatch(/cannot decrypt .*wrong SECRETS_KEY\?/);
      expect((error as Error).message).not.toContain('the-value');
    }
    // The refused set() must not have mixed a second key into the file.
    expect(Object.keys((await readStoreJson()).secrets)).toEqual(['smtp-password']);
  });

  it('refuses to invent a new key when the secrets file exists but the key file is gone', async () => {
    await createLocalSecretStore({ dataDir }).set('smtp-password', 'v');
    await rm(join(dataDir, KEY_FILE));
    const store = createLocalSecretStore({ dataDir });
    await expect(store.get('smtp-password')).rejects.toThrow(/secrets\.key is missing/);
    await expect(store.set('x', 'y')).rejects.toBeInstanceOf(SecretStoreUnavailableError);
    await expect(stat(join(dataDir, KEY_FILE))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a tampered ciphertext', async () => {
    const store = createLocalSecretStore({ dataDir });
    await store.set('smtp-password', 'original');
    const file = await readStoreJson();
    const data = Buffer.from(file.secrets['smtp-password']!.data, 'base64');
    data[0] = data[0]! ^ 0x01;
    file.secrets['smtp-password']!.data = data.toString('base64');
    await writeFile(join(dataDir, SECRETS_FILE), JSON.stringify(file));
    await expect(store.get('smtp-password')).rejects.toThrow(SecretStoreUnavailableError);
  });

  it('refuses entries swapped between names', async () => {
    const store = createLocalSecretStore({ dataDir });
    await store.set('smtp-email', 'sender@example.com');
    await store.set('smtp-password', 'the-password');
    const file = await readStoreJson();
    const email = file.secrets['smtp-email']!;
    file.secrets['smtp-email'] = file.secrets['smtp-password']!;
    file.secrets['smtp-password'] = email;
    await writeFile(join(dataDir, SECRETS_FILE), JSON.stringify(file));
    await expect(store.get('smtp-email')).rejects.toThrow(/cannot decrypt/);
    await expect(store.get('smtp-password')).rejects.toThrow(/cannot decrypt/);
  });

  it('reports a corrupt or newer-format file clearly', async () => {
    const store = createLocalSecretStore({ dataDir });
    await store.set('a', 'b');
    const file = await readStoreJson();
    await writeFile(join(dataDir, SECRETS_FILE), JSON.stringify({ ...file, version: 2 }));
    await expect(store.get('a')).rejects.toThrow(/format version 2/);
    await writeFile(join(dataDir, SECRETS_FILE), '{ not json');
    await expect(store.list()).rejects.toThrow(/not valid JSON/);
  });

  it('lets two stores on the same directory see each other’s writes (CLI beside a server)', async () => {
    const server = createLocalSecretStore({ dataDir });
    const cli = createLocalSecretStore({ dataDir });
    await server.set('from-server', '1');
    expect(await cli.get('from-server')).toBe('1');
    await cli.set('from-cli', '2');
    expect(await server.get('from-cli')).toBe('2');
    await cli.delete('from-server');
    expect(await server.get('from-server')).toBeUndefined();
  });

  it('loses no update when many writes race, and leaves no temp or lock file behind', async () => {
    const a = createLocalSecretStore({ dataDir });
    const b = createLocalSecretStore({ dataDir });
    const names = Array.from({ length: 24 }, (_, i) => `name-${String(i).padStart(2, '0')}`);
    await Promise.all(names.map((name, i) => (i % 2 === 0 ? a : b).set(name, `value-${i}`)));
    expect(await a.list()).toEqual(names);
    expect(await b.get('name-07')).toBe('value-7');
    expect((await readdir(dataDir)).sort()).toEqual([SECRETS_FILE, KEY_FILE].sort());
  });

  it('takes over a lock left by a process that died', async () => {
    const store = createLocalSecretStore({ dataDir });
    await store.set('a', '1');
    // A pid far above any real one stands for the crashed writer.
    await writeFile(join(dataDir, `${SECRETS_FILE}.lock`), '2147483646');
    await store.set('b', '2');
    expect(await store.list()).toEqual(['a', 'b']);
  });

  it('lists names sorted and deletes, a missing name included', async () => {
    const store = createLocalSecretStore({ dataDir });
    for (const name of ['zeta', 'Alpha', 'mid-dle', 'alpha2']) await store.set(name, name);
    expect(await store.list()).toEqual(['Alpha', 'alpha2', 'mid-dle', 'zeta']);
    await store.delete('MID-DLE');
    await store.delete('never-there');
    expect(await store.list()).toEqual(['Alpha', 'alpha2', 'zeta']);
    expect(await store.get('mid-dle')).toBeUndefined();
  });

  it.each(['', 'has space', 'under_score', 'dot.name', 'a'.repeat(128), 'ünïcode', 'x/y'])(
    'rejects the invalid name %j before touching the disk',
    async (name) => {
      const store = createLocalSecretStore({ dataDir });
      await expect(store.set(name, 'value-never-echoed')).rejects.toBeInstanceOf(InvalidSecretNameError);
      await expect(store.get(name)).rejects.toBeInstanceOf(InvalidSecretNameError);
      await expect(store.delete(name)).rejects.toBeInstanceOf(InvalidSecretNameError);
      const error = await store.set(name, 'value-never-echoed').catch((e: unknown) => e);
      expect(String(error)).not.toContain('value-never-echoed');
      expect(String(error)).not.toContain(name || '\u0000');
      await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
    },
  );

  it('accepts a 127-character name', async () => {
    const store = createLocalSecretStore({ dataDir });
    const name = `A-${'b'.repeat(125)}`;
    await store.set(name, 'v');
    expect(await store.get(name)).toBe('v');
  });

  it('is what createSecretStore builds for provider local, with SECRETS_KEY', async () => {
    const key = randomBytes(32);
    const store = await createSecretStore({
      provider: 'local',
      dataDir,
      key,
      cacheSeconds: 30,
      env: {},
      clock: new FakeClock(),
    });
    expect(store.kind).toBe('local');
    await store.set('smtp-password', 'through-the-factory');
    expect(await createLocalSecretStore({ dataDir, key }).get('smtp-password')).toBe('through-the-factory');
    expect(await readdir(dataDir)).not.toContain(KEY_FILE);
  });
});
