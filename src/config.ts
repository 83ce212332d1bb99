import path from 'node:path';
import { isIP } from 'node:net';

export type SecretsProvider = 'local' | 'env' | 'azure-keyvault';
export type TrustProxy = boolean | number | string[];

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly publicUrl: URL;
  /** true when PUBLIC_URL was not set: both localhost and 127.0.0.1 count as the public origin */
  readonly publicUrlDefaulted: boolean;
  readonly production: boolean;
  readonly dataDir: string;
  readonly database:
    | { readonly kind: 'sqlite'; readonly file: string }
    /** poolSize (DATABASE_POOL_SIZE, default 10): connections each pool may open; a server process has two (requests, and its delivery thread) */
    | { readonly kind: 'postgres'; readonly url: string; readonly poolSize?: number };
  readonly redisUrl: string | undefined;
  /** REDIS_KEY_PREFIX: what every key this deployment writes to Redis starts with, so deployments can share one Redis */
  readonly redisKeyPrefix: string;
  readonly secrets: {
    readonly provider: SecretsProvider;
    readonly key: Buffer | undefined;
    readonly cacheSeconds: number;
    readonly azureVaultUrl: string | undefined;
  };
  /** undefined: on until email settings are saved (outside production) */
  readonly mailDevInbox: boolean | undefined;
  readonly resetTokenTtlMinutes: number;
  readonly passwordMinLength: number;
  readonly sessionIdleMinutes: number;
  readonly sessionMaxHours: number;
  readonly limits: {
    readonly forgotPerAddressPerHour: number;
    readonly forgotPerIpPerMinute: number;
    readonly resetPerIpPerMinute: number;
    readonly loginPerIpPerMinute: number;
  };
  readonly trustProxy: TrustProxy;
  readonly logLevel: string;
  /** LOG_FORMAT: human-readable lines (a terminal) or one JSON object per line (anything else) */
  readonly logFormat: 'pretty' | 'json';
  /** BRAND_NAME: the dashboard's name on every page and in the emails */
  readonly brandName: string;
  /** BRAND_LOGO_URL: a same-origin path (/…) or a data: image URL; undefined: no logo */
  readonly brandLogoUrl: string | undefined;
  /** the secrets the email settings may name (MAIL_SECRET_NAME_PATTERN); no other secret is read for mail */
  readonly mailSecretNamePattern: RegExp;
  /** AZURE_AUTHORITY_HOST: Entra ID's host for mail tokens; undefined: login.microsoftonline.com */
  readonly azureAuthorityHost: string | undefined;
  /** GRAPH_BASE_URL: Microsoft Graph, https://graph.microsoft.com by default */
  readonly graphBaseUrl: string;
  /** OUTBOX_LEASE_SECONDS: how long a claimed delivery is held before another worker may take it again */
  readonly outboxLeaseSeconds: number;
  /** MAIL_POOL_SIZE: SMTP connections the delivery worker of this instance keeps open (nodemailer's maxConnections) */
  readonly mailPoolSize: number;
}

export const DEFAULT_MAIL_SECRET_NAME_PATTERN = '^(smtp|mail)-';
export const DEFAULT_GRAPH_BASE_URL = 'https://graph.microsoft.com';
/** 3: Exchange Online refuses a fourth concurrent SMTP submission per mailbox (432 4.3.2). */
export const DEFAULT_MAIL_POOL_SIZE = 3;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Reads the environment once, validates every variable and reports all problems together. */
export function loadConfig(env: Env, options: { cwd?: string; stdoutIsTty?: boolean } = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return Number(raw);
  };

  const bool = (name: string): boolean | undefined => {
    const raw = read(name);
    if (raw === undefined) return undefined;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    problems.push(`${name} must be true, false, 1 or 0 (got "${raw}")`);
    return undefined;
  };

  const nodeEnv = read('NODE_ENV');
  const production = nodeEnv === 'production';
  const port = int('PORT', 3000, 0, 65535);
  const host = read('HOST') ?? '127.0.0.1';

  let publicUrl = new URL(`http://localhost:${port}`);
  const publicUrlRaw = read('PUBLIC_URL');
  if (publicUrlRaw !== undefined) {
    try {
      const u = new URL(publicUrlRaw);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      if (u.search || u.hash || u.username || u.password) throw new Error('extra parts');
      publicUrl = new URL(u.origin + u.pathname.replace(/\/+$/, ''));
    } catch {
      problems.push(`PUBLIC_URL must be an http(s) URL without query, fragment or credentials (got "${publicUrlRaw}")`);
    }
  } else if (production) {
    problems.push('PUBLIC_URL is required when NODE_ENV=production (it is the only source of links in emails)');
  }

  const dataDir = path.resolve(cwd, read('DATA_DIR') ?? './data');

  let database: Config['database'] = { kind: 'sqlite', file: path.join(dataDir, 'gatehouse.sqlite') };
  const dbUrl = read('DATABASE_URL');
  // Checked even on SQLite, so a bad value is found before the move to PostgreSQL.
  const poolSize = int('DATABASE_POOL_SIZE', 10, 1, 1000);
  if (dbUrl !== undefined) {
    if (/^postgres(ql)?:\/\//.test(dbUrl)) database = { kind: 'postgres', url: dbUrl, poolSize };
    else if (dbUrl.startsWith('sqlite:')) database = { kind: 'sqlite', file: path.resolve(cwd, dbUrl.slice('sqlite:'.length)) };
    else problems.push('DATABASE_URL must start with postgres:// (or sqlite:<path>)');
  }

  const redisUrl = read('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) problems.push('REDIS_URL must start with redis:// or rediss://');
  const redisKeyPrefix = read('REDIS_KEY_PREFIX') ?? 'gatehouse:';
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(redisKeyPrefix)) problems.push('REDIS_KEY_PREFIX must be 1 to 64 letters, digits, colons, dots, dashes or underscores');

  const providerRaw = read('SECRETS_PROVIDER') ?? 'local';
  let provider: SecretsProvider = 'local';
  if (providerRaw === 'local' || providerRaw === 'env' || providerRaw === 'azure-keyvault') provider = providerRaw;
  else problems.push(`SECRETS_PROVIDER must be local, env or azure-keyvault (got "${providerRaw}")`);

  let key: Buffer | undefined;
  const keyRaw = read('SECRETS_KEY');
  if (keyRaw !== undefined) {
    const decoded = /^[0-9a-fA-F]{64}$/.test(keyRaw) ? Buffer.from(keyRaw, 'hex') : Buffer.from(keyRaw, 'base64');
    if (decoded.length !== 32) problems.push('SECRETS_KEY must be 32 bytes, as 64 hex digits or base64');
    else key = decoded;
  }

  const azureVaultUrl = read('AZURE_KEYVAULT_URL');
  if (provider === 'azure-keyvault') {
    if (azureVaultUrl === undefined) problems.push('AZURE_KEYVAULT_URL is required when SECRETS_PROVIDER=azure-keyvault');
    else if (!/^https:\/\//.test(azureVaultUrl)) problems.push('AZURE_KEYVAULT_URL must be an https:// URL');
  }

  // Where Entra ID tokens and Microsoft Graph are: the public cloud by default; a sovereign cloud
  // or a local fake otherwise. A bearer token never travels in clear.
  const azureAuthorityHost = read('AZURE_AUTHORITY_HOST');
  if (azureAuthorityHost !== undefined && !isHttpsUrl(azureAuthorityHost)) problems.push(`AZURE_AUTHORITY_HOST must be an https:// URL (got "${azureAuthorityHost}")`);
  const graphBaseUrl = read('GRAPH_BASE_URL') ?? DEFAULT_GRAPH_BASE_URL;
  if (!isHttpsUrl(graphBaseUrl)) problems.push(`GRAPH_BASE_URL must be an https:// URL (got "${graphBaseUrl}")`);

  const mailDevInbox = bool('MAIL_DEV_INBOX');
  if (production && mailDevInbox === true) problems.push('MAIL_DEV_INBOX=true is not allowed with NODE_ENV=production');

  const passwordMinLength = int('PASSWORD_MIN_LENGTH', 15, 8, 128);

  const trustProxy = parseTrustProxy(read('TRUST_PROXY'), problems);

  const logLevel = read('LOG_LEVEL') ?? 'info';
  const logFormatRaw = read('LOG_FORMAT');
  if (logFormatRaw !== undefined && logFormatRaw !== 'pretty' && logFormatRaw !== 'json') problems.push(`LOG_FORMAT must be pretty or json (got "${logFormatRaw}")`);
  // A person at a terminal reads lines; a service manager or a log shipper reads JSON.
  const logFormat = logFormatRaw === 'pretty' || logFormatRaw === 'json' ? logFormatRaw : options.stdoutIsTty === true ? 'pretty' : 'json';

  const brandName = (read('BRAND_NAME') ?? 'Gatehouse').trim();
  if (brandName === '' || brandName.length > 60 || /[\u0000-\u001f\u007f<>]/.test(brandName)) problems.push('BRAND_NAME must be 1 to 60 characters, without control characters or < >');
  const brandLogoUrl = read('BRAND_LOGO_URL');
  // Same origin or inline: the pages' Content-Security-Policy allows no other origin.
  if (brandLogoUrl !== undefined && !(/^\/(?!\/)[^\s"'<>\\]*$/.test(brandLogoUrl) || /^data:image\/(png|svg\+xml|webp|gif|jpeg);base64,[A-Za-z0-9+/=]+$/.test(brandLogoUrl))) {
    problems.push('BRAND_LOGO_URL must be a path on this server (/logo.svg) or a data:image/…;base64 URL');
  }
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  // The settings form would otherwise let an admin send any secret of the store to any host.
  const mailPatternRaw = read('MAIL_SECRET_NAME_PATTERN') ?? DEFAULT_MAIL_SECRET_NAME_PATTERN;
  let mailSecretNamePattern = new RegExp(DEFAULT_MAIL_SECRET_NAME_PATTERN);
  try {
    mailSecretNamePattern = new RegExp(mailPatternRaw);
  } catch (err) {
    problems.push(`MAIL_SECRET_NAME_PATTERN must be a JavaScript regular expression (got "${mailPatternRaw}": ${(err as Error).message})`);
  }

  const config: Config = {
    port,
    host,
    publicUrl,
    publicUrlDefaulted: publicUrlRaw === undefined,
    production,
    dataDir,
    database,
    redisUrl,
    redisKeyPrefix,
    secrets: { provider, key, cacheSeconds: int('SECRETS_CACHE_SECONDS', 30, 0, 86_400), azureVaultUrl },
    mailDevInbox,
    resetTokenTtlMinutes: int('RESET_TOKEN_TTL_MINUTES', 60, 1, 1440),
    passwordMinLength,
    sessionIdleMinutes: int('SESSION_IDLE_MINUTES', 120, 1, 525_600),
    sessionMaxHours: int('SESSION_MAX_HOURS', 12, 1, 8760),
    limits: {
      forgotPerAddressPerHour: int('LIMIT_FORGOT_PER_ADDRESS_PER_HOUR', 3, 0, 1_000_000),
      forgotPerIpPerMinute: int('LIMIT_FORGOT_PER_IP_PER_MINUTE', 10, 0, 1_000_000),
      resetPerIpPerMinute: int('LIMIT_RESET_PER_IP_PER_MINUTE', 10, 0, 1_000_000),
      loginPerIpPerMinute: int('LIMIT_LOGIN_PER_IP_PER_MINUTE', 30, 0, 1_000_000),
    },
    trustProxy,
    logLevel,
    logFormat,
    brandName,
    brandLogoUrl,
    mailSecretNamePattern,
    azureAuthorityHost: azureAuthorityHost?.replace(/\/+$/, ''),
    graphBaseUrl: graphBaseUrl.replace(/\/+$/, ''),
    outboxLeaseSeconds: int('OUTBOX_LEASE_SECONDS', 120, 5, 3600),
    mailPoolSize: int('MAIL_POOL_SIZE', DEFAULT_MAIL_POOL_SIZE, 1, 50),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  for (const section of [config.database, config.secrets, config.limits, config.trustProxy, config.mailSecretNamePattern]) {
    if (typeof section === 'object') Object.freeze(section);
  }
  return Object.freeze(config);
}

function isHttpsUrl(raw: string): boolean {
  try {
    const u = new URL(raw);
    return u.protocol === 'https:' && u.username === '' && u.password === '' && u.search === '' && u.hash === '';
  } catch {
    return false;
  }
}

function parseTrustProxy(raw: string | undefined, problems: string[]): TrustProxy {
  if (raw === undefined || raw === 'false' || raw === '0') return false;
  if (raw === 'true') return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  const entries = raw.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = entries.filter((e) => {
    const [addr, bits, ...rest] = e.split('/');
    if (rest.length > 0 || addr === undefined || isIP(addr) === 0) return true;
    if (bits === undefined) return false;
    const max = isIP(addr) === 4 ? 32 : 128;
    return !/^\d+$/.test(bits) || Number(bits) > max;
  });
  if (entries.length === 0 || bad.length > 0) {
    problems.push(`TRUST_PROXY must be false, true, a hop count or a comma-separated list of addresses/CIDRs (bad: ${bad.join(', ') || raw})`);
    return false;
  }
  return entries;
}

/** The origins that count as this server's own for the origin check. */
export function publicOrigins(config: Config): string[] {
  if (!config.publicUrlDefaulted) return [config.publicUrl.origin];
  return [`http://localhost:${config.port}`, `http://127.0.0.1:${config.port}`];
}
