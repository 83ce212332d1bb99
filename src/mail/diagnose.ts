import dns from 'node:dns';
import net from 'node:net';
import { envVariableForSecret } from '../secrets/env.js';
import type { SecretStore } from '../secrets/store.js';
import { ADVICE, errorText, fail, Failure, oneLine, type Situation } from './advice.js';
import { readSenderSecrets, type SenderSecretsProblem, type MailCredentials } from './sender-secrets.js';
import { type EmailSettings, type MailTransport, validateEmailSettings } from './settings.js';
import type { DiagnoseErrorCode, DiagnoseTimeoutsMs, ProbeStageName, ProbeSession, StepOutcome, TransportCheck } from './transport-check.js';

export type { DiagnoseErrorCode, DiagnoseTimeoutsMs, ProbeContext, ProbeSession, ProbeStageName, StepOutcome, TransportCheck } from './transport-check.js';
import { smtpCheck } from './smtp-probe.js';
import { graphCheck } from './graph-probe.js';
import { createTokenSource, GRAPH_SCOPE, OUTLOOK_SCOPE, TokenError, type TokenSource } from './entra.js';
import { type Config, DEFAULT_GRAPH_BASE_URL } from '../config.js';

/*
 * The staged email check behind the Settings page's "Send test email" and `gatehouse mail test`:
 * the stages, their order and the result. Settings, secrets and DNS are the same for every
 * transport; the stages after them are the transport's probe (smtp-probe.ts), so a new transport
 * adds a probe rather than branches here. What each failure means and what to do about it is
 * advice.ts's table.
 */

export type DiagnoseStageName = 'settings' | 'secrets' | 'token' | 'dns' | ProbeStageName;

/** Each transport's probe: SMTP (with a password or a token) or Microsoft Graph. */
function checkFor(transport: MailTransport): TransportCheck {
  return transport === 'graph' ? graphCheck : smtpCheck;
}

/** The steps of the check for a transport, in order: a token only where Entra ID gives one. */
export function diagnoseStages(transport: MailTransport): DiagnoseStageName[] {
  return ['settings', 'secrets', ...(transport === 'smtp' ? [] : (['token'] as const)), 'dns', ...checkFor(transport).stages];
}

export interface DiagnoseStage {
  name: DiagnoseStageName;
  outcome: 'ok' | 'failed' | 'skipped';
  detail: string;
  ms: number;
}

export type DiagnoseResult =
  | { ok: true; stages: DiagnoseStage[] }
  | { ok: false; error: DiagnoseErrorCode; message: string; hint: string; stages: DiagnoseStage[] };

export const DEFAULT_DIAGNOSE_TIMEOUTS_MS: DiagnoseTimeoutsMs = { connect: 10_000, greeting: 10_000, socket: 20_000 };

export interface DiagnoseInput {
  settings: EmailSettings | undefined;
  secrets: SecretStore;
  /** MAIL_SECRET_NAME_PATTERN: a secret outside it is never read */
  secretNamePattern: RegExp;
  /** one valid address (the caller parses it) */
  to: string;
  timeoutsMs?: DiagnoseTimeoutsMs;
  /** Entra ID tokens (smtp-oauth2, graph); by default a source of its own, so the test asks Entra ID afresh */
  tokens?: TokenSource;
  /** AZURE_AUTHORITY_HOST, for the default token source and the hints */
  authorityHost?: string;
  /** GRAPH_BASE_URL */
  graphBaseUrl?: string;
  /** the Message-ID's domain: PUBLIC_URL's host */
  messageIdDomain?: string;
  /** test seam for DNS only (one address or several, in order); defaults to dns.promises.lookup */
  lookup?: (host: string) => Promise<LookupAddress | LookupAddress[]>;
}

export interface LookupAddress {
  address: string;
  family: number;
}

const NATURAL_CODE: Record<DiagnoseStageName, DiagnoseErrorCode> = {
  settings: 'not_configured',
  secrets: 'secret_not_found',
  token: 'auth_failed',
  dns: 'dns_failed',
  connect: 'connect_failed',
  tls: 'tls_failed',
  auth: 'auth_failed',
  send: 'rejected',
};

/** What the check takes from the configuration: the secret name pattern, the Entra ID and Graph endpoints, the Message-ID domain. */
export function diagnoseOptions(config: Config): Pick<DiagnoseInput, 'secretNamePattern' | 'authorityHost' | 'graphBaseUrl' | 'messageIdDomain'> {
  return {
    secretNamePattern: config.mailSecretNamePattern,
    authorityHost: config.azureAuthorityHost,
    graphBaseUrl: config.graphBaseUrl,
    messageIdDomain: config.publicUrl.hostname,
  };
}

export async function diagnoseEmail(input: DiagnoseInput): Promise<DiagnoseResult> {
  const timeouts = input.timeoutsMs ?? DEFAULT_DIAGNOSE_TIMEOUTS_MS;
  const graphBaseUrl = input.graphBaseUrl ?? DEFAULT_GRAPH_BASE_URL;
  const stages: DiagnoseStage[] = [];
  let probe: ProbeSession | undefined;

  async function stage<T>(name: DiagnoseStageName, fn: () => Promise<[T, StepOutcome]>): Promise<T> {
    const startedAt = performance.now();
    try {
      const [value, outcome] = await fn();
      if (typeof outcome === 'string') stages.push({ name, outcome: 'ok', detail: outcome, ms: msSince(startedAt) });
      else stages.push({ name, outcome: 'skipped', detail: outcome.skipped, ms: 0 });
      return value;
    } catch (err) {
      const failure = err instanceof Failure ? err : new Failure(NATURAL_CODE[name], `Unexpected error: ${oneLine(errorText(err))}`, 'Try again; if it keeps failing, check the server logs.');
      stages.push({ name, outcome: 'failed', detail: failure.message, ms: msSince(startedAt) });
      throw failure;
    }
  }

  try {
    const settings = await stage('settings', async () => {
      const s = input.settings;
      if (s === undefined) throw fail('settings-not-saved', 'Email settings are not saved yet.');
      // Names outside MAIL_SECRET_NAME_PATTERN are the secrets step's to report, with its own hint.
      const problems = validateEmailSettings(s, null);
      if (Object.keys(problems).length > 0) throw fail('settings-invalid', `The saved email settings are not valid (${Object.keys(problems).join(', ')}).`);
      return [s, checkFor(s.transport).describe(s)];
    });
    const check = checkFor(settings.transport);

    const credentials = await stage('secrets', async () => {
      // The transport's own reading: the check passes exactly when mail could go out.
      const read = await readSenderSecrets(settings, input.secrets, input.secretNamePattern);
      if (!read.ok) throw secretsFailure(read, input.secrets.kind, input.secretNamePattern);
      return [read.credentials, `sender ${read.credentials.from}; ${credentialDetail(settings)}`];
    });

    let accessToken: string | undefined;
    if (settings.transport !== 'smtp') {
      const authorityHost = input.authorityHost ?? 'https://login.microsoftonline.com';
      accessToken = await stage('token', async () => {
        const tokens = input.tokens ?? createTokenSource({ authorityHost: input.authorityHost });
        const scope = settings.transport === 'graph' ? GRAPH_SCOPE : OUTLOOK_SCOPE;
        try {
          const token = await tokens.get(settings, credentials.entra!, scope);
          return [token, `a token for ${scope} from ${settings.entraCredential === 'managed-identity' ? 'the managed identity' : authorityHost}`];
        } catch (err) {
          if (!(err instanceof TokenError)) throw err;
          throw fail(err.situation, `${err.message}`, {
            clientSecretName: settings.clientSecretName ?? '',
            certificateName: settings.certificateName ?? '',
            clientId: settings.clientId ?? '',
            tenantId: settings.tenantId ?? '',
            authorityHost,
          });
        }
      });
    }

    const configuredHost = settings.transport === 'graph' ? new URL(graphBaseUrl).hostname : settings.host;
    const host = configuredHost.replace(/^\[|\]$/g, '').replace(/\.$/, '');
    const addresses = await stage('dns', async () => {
      if (net.isIP(host) !== 0) return [[host], `${configuredHost} is an IP address`];
      // Every address, in the resolver's order: "localhost" may list ::1 before 127.0.0.1.
      const lookup = input.lookup ?? ((name: string) => dns.promises.lookup(name, { all: true }));
      const addressesOf = async (name: string): Promise<string[]> => [await lookup(name)].flat().map((a) => a.address);
      try {
        const found = await withTimeout(addressesOf(host), timeouts.connect, () => Object.assign(new Error('DNS lookup timed out'), { code: 'ETIMEOUT' }));
        if (found.length === 0) throw Object.assign(new Error('no address'), { code: 'ENODATA' });
        return [found, `${configuredHost} → ${found.join(', ')}`];
      } catch (err) {
        throw dnsFailure(err, configuredHost);
      }
    });

    const messageIdDomain = input.messageIdDomain ?? 'localhost';
    const session = check.open({ settings, credentials, accessToken, messageIdDomain, host, addresses, graphBaseUrl, to: input.to, timeouts });
    probe = session;
    for (const name of check.stages) await stage(name, async () => [undefined, await session[name]!()]);
    return { ok: true, stages };
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    for (const name of diagnoseStages(input.settings?.transport ?? 'smtp')) {
      if (!stages.some((s) => s.name === name)) stages.push({ name, outcome: 'skipped', detail: 'not run: an earlier step failed', ms: 0 });
    }
    return { ok: false, error: err.error, message: err.message, hint: err.hint, stages };
  } finally {
    probe?.close();
  }
}

/** One line per stage, as `gatehouse mail test` prints them. */
export function formatStage(stage: DiagnoseStage): string {
  const mark = stage.outcome === 'ok' ? '✓' : stage.outcome === 'failed' ? '✗' : '–';
  return `${mark} ${stage.name}  ${stage.detail}`;
}

/** The secrets step's line: what the transport signs in with, never a value. */
function credentialDetail(settings: EmailSettings): string {
  if (settings.transport === 'smtp') return settings.passwordSecretName === null ? 'no password (a relay without AUTH)' : `password from secret "${settings.passwordSecretName}"`;
  if (settings.entraCredential === 'client-secret') return `client secret from secret "${settings.clientSecretName}"`;
  if (settings.entraCredential === 'certificate') return `certificate and key from "${settings.certificateName}"`;
  return 'managed identity: no secret';
}

function secretsFailure(read: SenderSecretsProblem, kind: SecretStore['kind'], secretNamePattern: RegExp): Failure {
  const { name } = read;
  switch (read.problem) {
    case 'outside-pattern':
      return fail('secret-outside-pattern', `The secret "${name}" was not read: email settings can only use secrets whose names match ${secretNamePattern.source}.`, {
        pattern: secretNamePattern.source,
      });
    case 'unreadable':
      return fail('secret-store-unreadable', `The ${kind} secret store could not be read for "${name}": ${oneLine(errorText(read.cause))}`);
    case 'missing': {
      const byKind = `secret-missing:${kind}`;
      const situation: Situation = byKind in ADVICE ? (byKind as Situation) : 'secret-missing';
      const holds = { address: 'the sender address', password: 'the password', 'client-secret': "the app's client secret", certificate: "the app's certificate" }[read.holds];
      return fail(situation, `The secret "${name}" (${holds}) was not found in the ${kind} secret store.`, { name, envVariable: envVariableForSecret(name) });
    }
    case 'not-an-address':
      // Never echoed: a value that is not an address may well be a password pasted into the wrong secret.
      return fail('sender-not-an-address', `The secret "${name}" does not hold one email address.`, { emailSecretName: name });
    case 'not-a-pem-certificate':
      return fail('not-a-pem-certificate', `The secret "${name}" does not hold a certificate and its private key in PEM.`, { name });
  }
}

function dnsFailure(err: unknown, host: string): Failure {
  const code = (err as { code?: string }).code ?? 'ERROR';
  if (code === 'ENOTFOUND' || code === 'ENODATA' || code === 'EAI_NONAME') return fail('host-not-found', `The host ${host} was not found (${code}).`);
  return fail('dns-failed', `The host ${host} could not be resolved (${code}): ${oneLine(errorText(err))}`);
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(onTimeout()), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

function msSince(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}
