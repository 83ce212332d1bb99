import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, publicOrigins, type Config } from '../src/config.js';

const CWD = path.resolve('/srv/gatehouse');
const load = (env: Record<string, string | undefined>): Config => loadConfig(env, { cwd: CWD });

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('listens on 127.0.0.1:3000 with http://localhost:3000 as the public URL', () => {
    const config = load({});
    expect(config.port).toBe(3000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.publicUrl.href).toBe('http://localhost:3000/');
    expect(config.publicUrlDefaulted).toBe(true);
    expect(config.production).toBe(false);
  });

  it('keeps data in ./data resolved against the working directory, with SQLite inside it', () => {
    const config = load({});
    expect(config.dataDir).toBe(path.join(CWD, 'data'));
    expect(path.isAbsolute(config.dataDir)).toBe(true);
    expect(config.database).toEqual({ kind: 'sqlite', file: path.join(CWD, 'data', 'gatehouse.sqlite') });
  });

  it('uses the documented defaults for everything else', () => {
    const config = load({});
    expect(config).toMatchObject({
      redisUrl: undefined,
      redisKeyPrefix: 'gatehouse:',
      outboxLeaseSeconds: 120,
      secrets: { provider: 'local', key: undefined, cacheSeconds: 30, azureVaultUrl: undefined },
      mailDevInbox: undefined,
      resetTokenTtlMinutes: 60,
      passwordMinLength: 15,
      sessionIdleMinutes: 120,
      sessionMaxHours: 12,
      limits: { forgotPerAddressPerHour: 3, forgotPerIpPerMinute: 10, resetPerIpPerMinute: 10, loginPerIpPerMinute: 30 },
      trustProxy: false,
      logLevel: 'info',
    });
  });

  it('derives the default public URL from PORT', () => {
    expect(load({ PORT: '8080' }).publicUrl.href).toBe('http://localhost:8080/');
  });

  it('treats empty and blank variables as unset', () => {
    const config = load({ PORT: '', HOST: '   ', PUBLIC_URL: '' });
    expect(config.port).toBe(3000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.publicUrlDefaulted).toBe(true);
  });
});

describe('validation', () => {
  it('reports every bad variable at once in one ConfigError', () => {
    const problems = problemsOf({
      PORT: 'abc',
      PASSWORD_MIN_LENGTH: '7',
      TRUST_PROXY: '10.0.0.0/33',
      SECRETS_KEY: 'too-short',
      MAIL_DEV_INBOX: 'yes',
      DATABASE_URL: 'mysql://db/gatehouse',
      LOG_LEVEL: 'loud',
      MAIL_SECRET_NAME_PATTERN: '(',
    });
    const names = ['PORT', 'PASSWORD_MIN_LENGTH', 'TRUST_PROXY', 'SECRETS_KEY', 'MAIL_DEV_INBOX', 'DATABASE_URL', 'LOG_LEVEL', 'MAIL_SECRET_NAME_PATTERN'];
    expect(problems).toHaveLength(names.length);
    for (const name of names) expect(problems.filter((p) => p.includes(name)), name).toHaveLength(1);
  });

  it('lists every problem in the error message, one per line', () => {
    try {
      load({ PORT: '70000', SESSION_IDLE_MINUTES: '0' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toMatch(/PORT/);
      expect(message).toMatch(/SESSION_IDLE_MINUTES/);
      expect(message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(2);
    }
  });

  it.each([
    ['PORT', '65536'],
    ['PORT', '-1'],
    ['PORT', '30.5'],
    ['RESET_TOKEN_TTL_MINUTES', '0'],
    ['SECRETS_CACHE_SECONDS', 'forever'],
    ['LIMIT_LOGIN_PER_IP_PER_MINUTE', '-5'],
    ['SECRETS_PROVIDER', 'vault'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['REDIS_KEY_PREFIX', 'gate house'],
    ['REDIS_KEY_PREFIX', 'x'.repeat(65)],
    ['OUTBOX_LEASE_SECONDS', '4'],
    ['DATABASE_POOL_SIZE', '0'],
    ['PUBLIC_URL', 'ftp://example.com'],
    ['PUBLIC_URL', 'https://example.com/?next=/'],
    ['PUBLIC_URL', 'https://example.com/#top'],
    ['PUBLIC_URL', 'https://user:pass@example.com'],
    ['PUBLIC_URL', 'not a url'],
    ['MAIL_SECRET_NAME_PATTERN', '^(smtp|mail-'],
    ['MAIL_SECRET_NAME_PATTERN', '[a-'],
    ['AZURE_AUTHORITY_HOST', 'http://127.0.0.1:8443'],
    ['AZURE_AUTHORITY_HOST', 'login.microsoftonline.com'],
    ['GRAPH_BASE_URL', 'http://graph.microsoft.com'],
    ['GRAPH_BASE_URL', 'https://user:pass@graph.example'],
  ])('refuses %s=%s', (name, value) => {
    const problems = problemsOf({ [name]: value });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(name);
  });

  it('refuses PASSWORD_MIN_LENGTH below 8 and accepts 8', () => {
    expect(problemsOf({ PASSWORD_MIN_LENGTH: '7' })[0]).toContain('PASSWORD_MIN_LENGTH');
    expect(load({ PASSWORD_MIN_LENGTH: '8' }).passwordMinLength).toBe(8);
  });

  it('requires AZURE_KEYVAULT_URL, over https, with the azure-keyvault provider', () => {
    expect(problemsOf({ SECRETS_PROVIDER: 'azure-keyvault' })[0]).toContain('AZURE_KEYVAULT_URL');
    expect(problemsOf({ SECRETS_PROVIDER: 'azure-keyvault', AZURE_KEYVAULT_URL: 'http://vault.local' })[0]).toContain('https');
    const config = load({ SECRETS_PROVIDER: 'azure-keyvault', AZURE_KEYVAULT_URL: 'https://my-vault.vault.azure.net' });
    expect(config.secrets).toMatchObject({ provider: 'azure-keyvault', azureVaultUrl: 'https://my-vault.vault.azure.net' });
  });
});

describe('production', () => {
  it('requires PUBLIC_URL', () => {
    const problems = problemsOf({ NODE_ENV: 'production' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('PUBLIC_URL');
    const config = load({ NODE_ENV: 'production', PUBLIC_URL: 'https://gate.example.com' });
    expect(config.production).toBe(true);
    expect(config.publicUrlDefaulted).toBe(false);
  });

  it('refuses MAIL_DEV_INBOX=true (or 1) but accepts false', () => {
    const base = { NODE_ENV: 'production', PUBLIC_URL: 'https://gate.example.com' };
    for (const value of ['true', '1']) {
      const problems = problemsOf({ ...base, MAIL_DEV_INBOX: value });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('MAIL_DEV_INBOX');
    }
    expect(load({ ...base, MAIL_DEV_INBOX: 'false' }).mailDevInbox).toBe(false);
  });

  it('allows MAIL_DEV_INBOX=true outside production', () => {
    expect(load({ MAIL_DEV_INBOX: 'true' }).mailDevInbox).toBe(true);
  });
});

describe('variables', () => {
  it('keeps PUBLIC_URL without a trailing slash in its path', () => {
    expect(load({ PUBLIC_URL: 'https://gate.example.com/' }).publicUrl.href).toBe('https://gate.example.com/');
    expect(load({ PUBLIC_URL: 'https://example.com/auth/' }).publicUrl.href).toBe('https://example.com/auth');
  });

  it('selects PostgreSQL for postgres:// and postgresql:// URLs', () => {
    for (const url of ['postgres://gh:pw@db.internal:5432/gatehouse', 'postgresql://db.internal/gatehouse']) {
      expect(load({ DATABASE_URL: url }).database).toEqual({ kind: 'postgres', url, poolSize: 10 });
      expect(load({ DATABASE_URL: url, DATABASE_POOL_SIZE: '4' }).database).toEqual({ kind: 'postgres', url, poolSize: 4 });
    }
  });

  it('resolves a sqlite: DATABASE_URL against the working directory', () => {
    expect(load({ DATABASE_URL: 'sqlite:db/app.sqlite' }).database).toEqual({ kind: 'sqlite', file: path.join(CWD, 'db', 'app.sqlite') });
  });

  it('reads booleans as true/false/1/0 and nothing else', () => {
    expect(load({ MAIL_DEV_INBOX: 'true' }).mailDevInbox).toBe(true);
    expect(load({ MAIL_DEV_INBOX: '1' }).mailDevInbox).toBe(true);
    expect(load({ MAIL_DEV_INBOX: 'false' }).mailDevInbox).toBe(false);
    expect(load({ MAIL_DEV_INBOX: '0' }).mailDevInbox).toBe(false);
    for (const value of ['yes', 'no', 'on', 'TRUE', '2']) {
      expect(problemsOf({ MAIL_DEV_INBOX: value })[0], value).toContain('MAIL_DEV_INBOX');
    }
  });

  it.each([
    ['false', false],
    ['0', false],
    ['true', true],
    ['2', 2],
    ['10.0.0.1', ['10.0.0.1']],
    ['10.0.0.1, 192.168.0.0/16, ::1, fd00::/8', ['10.0.0.1', '192.168.0.0/16', '::1', 'fd00::/8']],
    ['10.0.0.0/32,2001:db8::/128', ['10.0.0.0/32', '2001:db8::/128']],
  ] as const)('reads TRUST_PROXY=%s', (raw, expected) => {
    expect(load({ TRUST_PROXY: raw }).trustProxy).toEqual(expected);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8/1', '10.0.0.0/x', 'proxy.internal', '10.0.0.1,nope', 'yes', ','])(
    'refuses TRUST_PROXY=%s',
    (raw) => {
      const problems = problemsOf({ TRUST_PROXY: raw });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toContain('TRUST_PROXY');
    },
  );

  it('decodes SECRETS_KEY from 64 hex digits or base64 of 32 bytes', () => {
    const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7 + 1));
    expect(load({ SECRETS_KEY: bytes.toString('hex') }).secrets.key?.equals(bytes)).toBe(true);
    expect(load({ SECRETS_KEY: bytes.toString('hex').toUpperCase() }).secrets.key?.equals(bytes)).toBe(true);
    expect(load({ SECRETS_KEY: bytes.toString('base64') }).secrets.key?.equals(bytes)).toBe(true);
  });

  it('sends mail tokens only over https: Entra ID from login.microsoftonline.com and Graph from graph.microsoft.com unless told', () => {
    const byDefault = load({});
    expect(byDefault.azureAuthorityHost).toBeUndefined();
    expect(byDefault.graphBaseUrl).toBe('https://graph.microsoft.com');
    const local = load({ AZURE_AUTHORITY_HOST: 'https://127.0.0.1:8443/', GRAPH_BASE_URL: 'https://127.0.0.1:9443/' });
    expect(local.azureAuthorityHost).toBe('https://127.0.0.1:8443');
    expect(local.graphBaseUrl).toBe('https://127.0.0.1:9443');
  });

  it('lets email settings name only secrets starting smtp- or mail- by default, and MAIL_SECRET_NAME_PATTERN changes that', () => {
    const byDefault = load({}).mailSecretNamePattern;
    expect(byDefault.source).toBe('^(smtp|mail)-');
    for (const name of ['smtp-password', 'smtp-sender', 'mail-from']) expect(byDefault.test(name), name).toBe(true);
    for (const name of ['billing-db-password', 'tempAdminPassword', 'SMTP-password', 'my-smtp-password', 'smtp']) expect(byDefault.test(name), name).toBe(false);
    const custom = load({ MAIL_SECRET_NAME_PATTERN: '^outbound-mail-(from|pass)$' }).mailSecretNamePattern;
    expect(custom.test('outbound-mail-pass')).toBe(true);
    expect(custom.test('smtp-password')).toBe(false);
    // Used again and again: a frozen pattern without flags keeps no state between tests.
    expect(Object.isFrozen(custom)).toBe(true);
    expect([custom.test('outbound-mail-from'), custom.test('outbound-mail-from')]).toEqual([true, true]);
  });

  it('refuses a SECRETS_KEY that is not 32 bytes', () => {
    for (const key of [Buffer.alloc(16, 1).toString('base64'), Buffer.alloc(33, 1).toString('base64'), 'ab'.repeat(31), 'ab'.repeat(33)]) {
      expect(problemsOf({ SECRETS_KEY: key })[0], key).toContain('SECRETS_KEY');
    }
  });
});

describe('the returned config', () => {
  it('is frozen', () => {
    const config = load({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('is frozen all the way down: its sections cannot be changed either', () => {
    const config = load({ TRUST_PROXY: '10.0.0.1' });
    for (const [name, section] of Object.entries({ database: config.database, secrets: config.secrets, limits: config.limits, trustProxy: config.trustProxy })) {
      expect(Object.isFrozen(section), name).toBe(true);
    }
    expect(() => {
      (config.limits as { loginPerIpPerMinute: number }).loginPerIpPerMinute = 0;
    }).toThrow(TypeError);
  });

  it('names localhost and 127.0.0.1 at PORT as public origins when PUBLIC_URL is unset', () => {
    expect(publicOrigins(load({ PORT: '8080' }))).toEqual(['http://localhost:8080', 'http://127.0.0.1:8080']);
  });

  it('names only the PUBLIC_URL origin when it is set', () => {
    expect(publicOrigins(load({ PUBLIC_URL: 'https://gate.example.com/auth', PORT: '8080' }))).toEqual(['https://gate.example.com']);
    expect(publicOrigins(load({ PUBLIC_URL: 'http://localhost:3000' }))).toEqual(['http://localhost:3000']);
  });
});

describe('the console and the brand (issue 10)', () => {
  it('logs readable lines on a terminal and JSON anywhere else, unless LOG_FORMAT says', () => {
    expect(loadConfig({}, { cwd: CWD }).logFormat).toBe('json');
    expect(loadConfig({}, { cwd: CWD, stdoutIsTty: false }).logFormat).toBe('json');
    expect(loadConfig({}, { cwd: CWD, stdoutIsTty: true }).logFormat).toBe('pretty');
    expect(loadConfig({ LOG_FORMAT: 'json' }, { cwd: CWD, stdoutIsTty: true }).logFormat).toBe('json');
    expect(loadConfig({ LOG_FORMAT: 'pretty' }, { cwd: CWD, stdoutIsTty: false }).logFormat).toBe('pretty');
    expect(loadConfig({ LOG_FORMAT: ' ' }, { cwd: CWD, stdoutIsTty: true }).logFormat).toBe('pretty');
  });

  it('refuses any other LOG_FORMAT, naming it', () => {
    expect(problemsOf({ LOG_FORMAT: 'text' })).toEqual(['LOG_FORMAT must be pretty or json (got "text")']);
    expect(problemsOf({ LOG_FORMAT: 'JSON' })).toEqual(['LOG_FORMAT must be pretty or json (got "JSON")']);
  });

  it('names the dashboard Gatehouse unless BRAND_NAME says otherwise, and shows no logo unless BRAND_LOGO_URL names one', () => {
    expect(load({})).toMatchObject({ brandName: 'Gatehouse', brandLogoUrl: undefined });
    expect(load({ BRAND_NAME: '  Acme Sign-in  ' }).brandName).toBe('Acme Sign-in');
    expect(load({ BRAND_NAME: 'Ünïcødé & Co — 東京' }).brandName).toBe('Ünïcødé & Co — 東京');
    expect(load({ BRAND_NAME: 'x'.repeat(60) }).brandName).toHaveLength(60);
  });

  it.each([['x'.repeat(61)], ['<script>'], ['Acme\u0007'], ['Acme\u007f']])('refuses BRAND_NAME %j', (name) => {
    expect(problemsOf({ BRAND_NAME: name })).toEqual(['BRAND_NAME must be 1 to 60 characters, without control characters or < >']);
  });

  it.each([['/logo.svg'], ['/static/brand/logo.png?v=2'], ['data:image/png;base64,iVBORw0KGgo='], ['data:image/svg+xml;base64,PHN2Zy8+']])('takes BRAND_LOGO_URL %s (same origin or inline)', (url) => {
    expect(load({ BRAND_LOGO_URL: url }).brandLogoUrl).toBe(url);
  });

  it.each([
    ['https://cdn.example.com/logo.svg'],
    ['//cdn.example.com/logo.svg'],
    ['logo.svg'],
    ['javascript:alert(1)'],
    ['data:text/html;base64,PHNjcmlwdD4='],
    ['data:image/svg+xml,<svg onload=alert(1)>'],
    ['/logo.svg" onerror="alert(1)'],
  ])('refuses BRAND_LOGO_URL %s: another origin or not an image', (url) => {
    expect(problemsOf({ BRAND_LOGO_URL: url })).toEqual(['BRAND_LOGO_URL must be a path on this server (/logo.svg) or a data:image/…;base64 URL']);
  });
});
