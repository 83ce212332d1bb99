import { createHash } from 'node:crypto';
// Type-only: the SDK is loaded when a transport first needs a token, never on an SMTP-only install.
import type { AccessToken, TokenCredential } from '@azure/identity';
import type { EntraSecret } from './sender-secrets.js';
import type { EmailSettings } from './settings.js';

/*
 * Access tokens from Microsoft Entra ID for the app registration the email settings name: client
 * credentials with a client secret or a certificate, or managed identity / workload identity with
 * no secret at all. A token is cached until shortly before it expires, per app, credential and
 * scope; it is never logged or stored.
 */

export const GRAPH_SCOPE = 'https://graph.microsoft.com/.default';
export const OUTLOOK_SCOPE = 'https://outlook.office365.com/.default';

/** A token is renewed this long before it expires: a send that starts with it must not outlive it. */
export const TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
const TOKEN_TIMEOUT_MS = 15_000;

export type TokenSituation =
  | 'entra-wrong-secret'
  | 'entra-secret-expired'
  | 'entra-app-not-in-tenant'
  | 'entra-tenant-not-found'
  | 'entra-bad-certificate'
  | 'entra-managed-identity-unavailable'
  | 'entra-unreachable'
  | 'entra-refused';

/** Why no token came: what Entra ID (or the identity endpoint) said, in one line, and which situation that is. */
export class TokenError extends Error {
  constructor(
    message: string,
    readonly situation: TokenSituation,
    /** an outage is worth retrying; a refused credential is not, until someone fixes it */
    readonly transient: boolean,
    readonly aadsts: string | undefined,
  ) {
    super(message);
    this.name = 'TokenError';
  }
}

export interface EntraOptions {
  /** AZURE_AUTHORITY_HOST: where tokens come from (login.microsoftonline.com by default; a sovereign cloud or a test fake) */
  authorityHost?: string;
  /** the environment, for workload identity (AZURE_FEDERATED_TOKEN_FILE) */
  env?: Record<string, string | undefined>;
  now?: () => number;
}

export interface TokenSource {
  /** A token for the scope; from the cache while it has more than TOKEN_REFRESH_MARGIN_MS left. */
  get(settings: EmailSettings, secret: EntraSecret, scope: string): Promise<string>;
  /** Drops a token a resource server refused (401, 403): the next get asks Entra ID again. */
  forget(token: string): void;
}

interface CachedToken {
  token: string;
  renewAt: number;
}

interface Entry {
  credential: Promise<TokenCredential>;
  tokens: Map<string, CachedToken>;
  pending: Map<string, Promise<string>>;
}

// A credential per app and secret; a rotated secret makes a new entry, and old ones go.
const MAX_ENTRIES = 4;

export function createTokenSource(options: EntraOptions = {}): TokenSource {
  const env = options.env ?? process.env;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();

  const entryFor = (settings: EmailSettings, secret: EntraSecret): Entry => {
    const key = createHash('sha256')
      .update(JSON.stringify([settings.tenantId, settings.clientId, secret]))
      .digest('hex');
    let entry = entries.get(key);
    if (entry === undefined) {
      entry = { credential: buildCredential(settings, secret, options.authorityHost, env), tokens: new Map(), pending: new Map() };
      entries.set(key, entry);
      while (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value!);
    }
    return entry;
  };

  return {
    async get(settings, secret, scope) {
      const entry = entryFor(settings, secret);
      const cached = entry.tokens.get(scope);
      if (cached !== undefined && now() < cached.renewAt) return cached.token;
      // Sends at once share one request to Entra ID.
      let pending = entry.pending.get(scope);
      if (pending === undefined) {
        pending = (async () => {
          let credential: TokenCredential;
          try {
            credential = await entry.credential;
          } catch (err) {
            // The SDK checks the tenant's form when the credential is made.
            throw new TokenError(clipLine((err as Error).message), 'entra-tenant-not-found', false, undefined);
          }
          const token = await requestToken(credential, scope, secret, settings, options.authorityHost);
          const renewAt = Math.min(token.refreshAfterTimestamp ?? Infinity, token.expiresOnTimestamp - TOKEN_REFRESH_MARGIN_MS);
          entry.tokens.set(scope, { token: token.token, renewAt });
          return token.token;
        })().finally(() => entry.pending.delete(scope));
        entry.pending.set(scope, pending);
      }
      return pending;
    },
    forget(token) {
      // The credential object keeps the token in MSAL's cache too: the entry goes whole, and the
      // next get builds a new credential that asks Entra ID. (Managed identity tokens sit in a
      // process-wide MSAL cache that this cannot reach; they are renewed before they expire.)
      for (const [key, entry] of entries) {
        if ([...entry.tokens.values()].some((cached) => cached.token === token)) entries.delete(key);
      }
    },
  };
}

async function buildCredential(settings: EmailSettings, secret: EntraSecret, authorityHost: string | undefined, env: Record<string, string | undefined>): Promise<TokenCredential> {
  const identity = await import('@azure/identity');
  // With a host of our own (a sovereign cloud, a test), MSAL must not ask login.microsoftonline.com
  // whether that host is a known authority.
  const common = {
    ...(authorityHost === undefined ? {} : { authorityHost, disableInstanceDiscovery: true }),
    retryOptions: { maxRetries: 1, retryDelayInMs: 500 },
  };
  const tenantId = settings.tenantId ?? '';
  const clientId = settings.clientId ?? '';
  switch (secret.kind) {
    case 'client-secret':
      return new identity.ClientSecretCredential(tenantId, clientId, secret.secret, common);
    case 'certificate':
      return new identity.ClientCertificateCredential(tenantId, clientId, { certificate: secret.pem }, common);
    case 'managed-identity': {
      // Kubernetes workload identity: a federated token file instead of an identity endpoint.
      const tokenFilePath = env.AZURE_FEDERATED_TOKEN_FILE;
      if (tokenFilePath !== undefined && tokenFilePath !== '') {
        return new identity.WorkloadIdentityCredential({
          ...common,
          tokenFilePath,
          tenantId: settings.tenantId ?? env.AZURE_TENANT_ID,
          clientId: settings.clientId ?? env.AZURE_CLIENT_ID,
        });
      }
      return new identity.ManagedIdentityCredential(settings.clientId === null ? {} : { clientId: settings.clientId });
    }
  }
}

async function requestToken(credential: TokenCredential, scope: string, secret: EntraSecret, settings: EmailSettings, authorityHost: string | undefined): Promise<AccessToken> {
  let token: AccessToken | null;
  try {
    token = await credential.getToken(scope, { abortSignal: AbortSignal.timeout(TOKEN_TIMEOUT_MS) });
  } catch (err) {
    const failure = tokenError(err, secret.kind);
    // MSAL reports an unknown tenant (a 400 on the tenant's metadata) exactly as an unreachable
    // Entra ID: the metadata is asked for once more here, to tell the two apart.
    if (secret.kind !== 'managed-identity' && /endpoints_resolution_error/.test(failure.message)) throw await explainUnresolvedTenant(settings.tenantId ?? '', authorityHost);
    throw failure;
  }
  if (token === null) throw new TokenError('no token was returned', secret.kind === 'managed-identity' ? 'entra-managed-identity-unavailable' : 'entra-refused', true, undefined);
  return token;
}

async function explainUnresolvedTenant(tenantId: string, authorityHost: string | undefined): Promise<TokenError> {
  const host = (authorityHost ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
  try {
    const response = await fetch(`${host}/${encodeURIComponent(tenantId)}/v2.0/.well-known/openid-configuration`, { redirect: 'error', signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS) });
    const body = (await response.json().catch(() => ({}))) as { error_description?: unknown };
    if (response.ok) return new TokenError(`Entra ID answered for tenant ${tenantId}, but the sign-in library could not use its metadata`, 'entra-refused', true, undefined);
    return tokenError({ message: typeof body.error_description === 'string' ? body.error_description : `HTTP ${response.status} for tenant ${tenantId}` }, 'client-secret');
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    return new TokenError(`${host} could not be reached: ${cause ?? (err as Error).message}`, 'entra-unreachable', true, undefined);
  }
}

/** What Entra ID's refusal means, by its AADSTS code; the rest by the credential's kind. */
const AADSTS_SITUATIONS: Record<string, TokenSituation> = {
  '7000215': 'entra-wrong-secret',
  '7000222': 'entra-secret-expired',
  '700016': 'entra-app-not-in-tenant',
  '90002': 'entra-tenant-not-found',
  '900023': 'entra-tenant-not-found',
  '700027': 'entra-bad-certificate',
  '700024': 'entra-bad-certificate',
  '7000274': 'entra-bad-certificate',
};

/** An @azure/identity or MSAL error → one line (AADSTS code and description, never trace ids) and its situation. */
export function tokenError(err: unknown, kind: EntraSecret['kind']): TokenError {
  const e = err as { name?: string; message?: string; statusCode?: number; errorResponse?: { errorDescription?: string; error_description?: string } };
  const text = [e.errorResponse?.errorDescription, e.errorResponse?.error_description, e.message].filter((t): t is string => typeof t === 'string').join('\n');
  const aadsts = /AADSTS(\d+)/.exec(text);
  // Entra ID busy or throttling, past the SDK's own retries: the outbox tries again later.
  const busy = /^temporarily_unavailable|AADSTS50196\b/.test(text);
  if (aadsts !== null) {
    // The description up to its "Trace ID", which is noise to an admin.
    const line = /AADSTS\d+:[^\r\n]*/.exec(text)?.[0] ?? `AADSTS${aadsts[1]}`;
    return new TokenError(clipLine(line), busy ? 'entra-unreachable' : (AADSTS_SITUATIONS[aadsts[1]!] ?? 'entra-refused'), busy, aadsts[1]);
  }
  if (busy) return new TokenError(clipLine(text), 'entra-unreachable', true, undefined);
  const first = clipLine(text.split(/\r?\n/).find((l) => l.trim() !== '') ?? 'unknown error');
  if (kind === 'managed-identity') {
    // "ManagedIdentityCredential: Authentication failed. Message : Error(s): Not Available - … - Description: <what the endpoint said> - Correlation ID: …"
    const said = (err as { cause?: { errorMessage?: unknown } }).cause?.errorMessage;
    const full = typeof said === 'string' && said !== '' ? said : text;
    // MSAL formats it as "Error(s): … - Description: <what the endpoint said> - Correlation ID: …".
    const description = / - Description: (.*?) - Correlation ID/s.exec(full)?.[1] ?? (full === text ? undefined : full);
    if (description !== undefined) return new TokenError(clipLine(`the managed identity endpoint said: ${description}`), 'entra-managed-identity-unavailable', true, undefined);
    return new TokenError(first, 'entra-managed-identity-unavailable', true, undefined);
  }
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ECONNRESET|socket|network|timed? ?out|abort/i.test(text)) {
    return new TokenError(first, 'entra-unreachable', true, undefined);
  }
  if (kind === 'certificate' && /certificate|private key|PEM/i.test(text)) return new TokenError(first, 'entra-bad-certificate', false, undefined);
  return new TokenError(first, 'entra-refused', false, undefined);
}

function clipLine(text: string): string {
  const line = text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}
