import { execFile } from 'node:child_process';
import {
  constants as cryptoConstants,
  createHash,
  randomBytes,
  randomUUID,
  timingSafeEqual,
  verify as verifySignature,
  X509Certificate,
} from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import { closeServer, listen } from '../secrets/azure-fakes.js';
import type { TestCa } from '../helpers/tls.js';

/**
 * Local stand-ins for Microsoft 365 mail sending, over HTTPS / STARTTLS on 127.0.0.1 only:
 * - Microsoft Entra ID (the v2.0 token endpoint and the OpenID configuration MSAL reads),
 * - the App Service managed-identity endpoint (what IDENTITY_ENDPOINT names),
 * - Microsoft Graph POST /v1.0/users/{id|upn}/sendMail (JSON and MIME),
 * - an Exchange Online-like SMTP submission server that takes only XOAUTH2.
 * Tokens are opaque random strings; the fakes that issue them can `validate` them, and the
 * resource fakes take such a `validateToken`. Tokens and secrets stay in memory: the `requests`
 * logs hold neither (secrets and assertions are redacted, Authorization is never recorded).
 */

export const GRAPH_RESOURCE = 'https://graph.microsoft.com';
export const OUTLOOK_RESOURCE = 'https://outlook.office365.com';
export const GRAPH_SCOPE = `${GRAPH_RESOURCE}/.default`;
export const OUTLOOK_SCOPE = `${OUTLOOK_RESOURCE}/.default`;

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

export interface TokenInfo {
  tenantId: string;
  /** The app (client) id; for a managed identity, its client id. */
  clientId: string;
  /** As requested: `https://graph.microsoft.com/.default` from Entra, the `resource` from managed identity. */
  scope: string;
  /** The scope without `/.default` and trailing slash: what a resource server compares its audience with. */
  resource: string;
  via: 'secret' | 'assertion' | 'managed-identity';
  /** Epoch milliseconds. */
  issuedAt: number;
  expiresAt: number;
}

/** Looks a token up for a resource (`https://graph.microsoft.com`, or a scope under it); undefined when unknown, expired or for another resource. */
export type TokenValidator = (token: string, expectedScopePrefix: string) => TokenInfo | undefined;

/** The first validator that knows the token wins: e.g. `anyValidator(entra.validate, identity.validate)`. */
export function anyValidator(...validators: TokenValidator[]): TokenValidator {
  return (token, expected) => {
    for (const validate of validators) {
      const info = validate(token, expected);
      if (info) return info;
    }
    return undefined;
  };
}

/** `https://graph.microsoft.com/.default` and `https://graph.microsoft.com/` → `https://graph.microsoft.com`. */
export function resourceOf(scope: string): string {
  return scope.trim().replace(/\/\.default$/i, '').replace(/\/+$/, '').toLowerCase();
}

class TokenRegistry {
  private readonly tokens = new Map<string, TokenInfo>();
  readonly issued: TokenInfo[] = [];

  /** Lifetime in seconds of the next tokens. */
  constructor(public expiresIn = 3600) {}

  issue(info: Omit<TokenInfo, 'resource' | 'issuedAt' | 'expiresAt'>, prefix: string): string {
    const token = `${prefix}${randomBytes(24).toString('base64url')}`;
    const issuedAt = Date.now();
    const full: TokenInfo = {
      ...info,
      resource: resourceOf(info.scope),
      issuedAt,
      expiresAt: issuedAt + this.expiresIn * 1000,
    };
    this.tokens.set(token, full);
    this.issued.push(full);
    return token;
  }

  validate: TokenValidator = (token, expected) => {
    const info = this.tokens.get(token);
    if (!info) return undefined;
    if (info.expiresAt <= Date.now()) return undefined;
    return info.resource === resourceOf(expected) ? info : undefined;
  };

  revokeAll(): void {
    this.tokens.clear();
  }
}

/** What the Entra ID and managed-identity fakes show of the tokens they issue. */
export interface TokenIssuer {
  /** Every token issued, oldest first (never the token itself). */
  issued: TokenInfo[];
  /** Token lifetime in seconds for the next tokens; may be changed while the fake runs. */
  expiresIn: number;
  validate: TokenValidator;
  /** Forgets every issued token, as if they had all been revoked. */
  revokeAll(): void;
}

/** `fake` with the TokenIssuer fields of the registry (expiresIn read and set on it). */
function withTokens<T extends object>(registry: TokenRegistry, fake: T): T & TokenIssuer {
  return Object.defineProperties(fake, {
    issued: { value: registry.issued, enumerable: true, writable: true },
    expiresIn: {
      get: () => registry.expiresIn,
      set: (value: number) => {
        registry.expiresIn = value;
      },
      enumerable: true,
    },
    validate: { value: registry.validate, enumerable: true, writable: true },
    revokeAll: { value: () => registry.revokeAll(), enumerable: true, writable: true },
  }) as T & TokenIssuer;
}

// ---------------------------------------------------------------------------------------------
// Microsoft Entra ID
// ---------------------------------------------------------------------------------------------

export interface FakeEntraApp {
  /** Client secret value(s) accepted (two during a rotation). */
  secret?: string | string[];
  /** Public certificate(s), PEM, whose key may sign client assertions. */
  certificatePem?: string | string[];
  /** Every secret has expired: AADSTS7000222 even for the right value. */
  expired?: boolean;
}

export interface FakeEntraTenant {
  apps: Record<string, FakeEntraApp> | Map<string, FakeEntraApp>;
  /** Other names the tenant answers to, e.g. `contoso.onmicrosoft.com`. */
  domains?: string[];
}

export type FakeEntraTenants = Record<string, FakeEntraTenant> | Map<string, FakeEntraTenant>;

export interface EntraRequest {
  method: string;
  path: string;
  /** Tenant segment of the path, as sent. */
  tenant: string;
  status: number;
  /** The form of a token request, with client_secret and client_assertion replaced by `[redacted]`. */
  form?: Record<string, string>;
  clientId?: string;
  scope?: string;
  /** The AADSTS code of an error answer. */
  errorCode?: number;
  /** The JOSE header of a client assertion (alg, x5t / x5t#S256, x5c when the chain is sent). */
  assertionHeader?: Record<string, unknown>;
  clientRequestId?: string;
}

/** An error answer a fake is told to give: its HTTP status and extra headers (Retry-After). */
interface ErrorAnswer {
  status: number;
  headers?: Record<string, string>;
}

const retryAfter = (seconds: number): Record<string, string> => ({ 'retry-after': String(seconds) });

export interface EntraErrorAnswer extends ErrorAnswer {
  error: string;
  /** The AADSTS number. */
  code: number;
  /** Text after `AADSTSnnn: `. */
  description: string;
}

/** Ready-made answers for `failNextToken`, as Entra sends them. */
export const ENTRA_ERRORS = {
  /** The token service is briefly unavailable. */
  temporarilyUnavailable: (): EntraErrorAnswer => ({
    status: 503,
    error: 'temporarily_unavailable',
    code: 50196,
    description: 'The server temporarily cannot handle the request. Please try again later.',
  }),
  /** Throttled by Entra. */
  throttled: (retryAfterSeconds = 5): EntraErrorAnswer => ({
    status: 429,
    error: 'temporarily_unavailable',
    code: 50196,
    description: 'The server terminated an operation because it encountered a client request loop. Please contact your app vendor.',
    headers: retryAfter(retryAfterSeconds),
  }),
  /** AADSTS7000229: the service principal of the app is missing in the tenant (no admin consent). */
  missingServicePrincipal: (clientId: string): EntraErrorAnswer => ({
    status: 400,
    error: 'invalid_client',
    code: 7000229,
    description: `The client application ${clientId} is missing service principal in the tenant.`,
  }),
} as const;

export interface FakeEntraId extends TokenIssuer {
  /** Pass as `authorityHost` (with `disableInstanceDiscovery: true`). */
  url: string;
  port: number;
  requests: EntraRequest[];
  /** Token requests (successful or not) for the client and scope, e.g. to prove caching. */
  tokenRequests(clientId: string, scope: string): number;
  /** Answers the next token requests (after they are recorded), in order, with these errors, whatever they ask. */
  failNextToken(...answers: EntraErrorAnswer[]): void;
  close(): Promise<void>;
}

const ENTRA_TIMESTAMP = (): string => new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

/** The v2.0 endpoints of Entra ID for client credentials (secret or certificate), on 127.0.0.1. */
export async function startFakeEntraId(options: {
  key: string;
  cert: string;
  tenants: FakeEntraTenants;
  /** Default 3600. */
  expiresIn?: number;
}): Promise<FakeEntraId> {
  const requests: EntraRequest[] = [];
  const registry = new TokenRegistry(options.expiresIn);
  const counts = new Map<string, number>();
  const failures: EntraErrorAnswer[] = [];
  let base = '';

  const entries = <T>(value: Record<string, T> | Map<string, T>): [string, T][] =>
    value instanceof Map ? [...value.entries()] : Object.entries(value);
  // Read on every request, so a test may rotate a secret or add an app while the fake runs.
  const findTenant = (name: string): { id: string; tenant: FakeEntraTenant } | undefined => {
    const lower = name.toLowerCase();
    for (const [id, tenant] of entries(options.tenants)) {
      if (id.toLowerCase() === lower || (tenant.domains ?? []).some((d) => d.toLowerCase() === lower)) {
        return { id, tenant };
      }
    }
    return undefined;
  };
  const findApp = (tenant: FakeEntraTenant, clientId: string): FakeEntraApp | undefined =>
    entries(tenant.apps).find(([id]) => id.toLowerCase() === clientId.toLowerCase())?.[1];

  const server = createServer({ key: options.key, cert: options.cert }, (req, res) => {
    void handle(req, res).catch(() => sendJson(res, 500, { error: 'server_error' }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'https://fake.invalid');
    const segments = url.pathname.split('/').filter(Boolean);
    const tenantSegment = decodeURIComponent(segments[0] ?? '');
    const rest = segments.slice(1).join('/');
    const recorded: EntraRequest = {
      method: req.method ?? '',
      path: url.pathname,
      tenant: tenantSegment,
      status: 0,
      // MSAL sends it in the query string (and the form); Entra echoes it as the correlation id.
      clientRequestId: url.searchParams.get('client-request-id') ?? headerValue(req.headers['client-request-id']),
    };
    requests.push(recorded);
    const correlationId = recorded.clientRequestId ?? randomUUID();

    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
      recorded.status = status;
      sendJson(res, status, payload, headers);
    };
    const fail = (error: EntraErrorAnswer): void => {
      recorded.errorCode = error.code;
      answer(error.status, entraErrorBody(error, correlationId), error.headers);
    };
    const tenantNotFound = (): void =>
      fail({
        status: 400,
        error: 'invalid_tenant',
        code: 90002,
        description:
          `Tenant '${tenantSegment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. ` +
          'Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.',
      });

    // Instance discovery: MSAL asks for it unless disableInstanceDiscovery; answered anyway.
    if (req.method === 'GET' && tenantSegment === 'common' && rest === 'discovery/instance') {
      return answer(200, {
        tenant_discovery_endpoint: `${base}/{tenant}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: new URL(base).host, preferred_cache: new URL(base).host, aliases: [new URL(base).host] }],
      });
    }

    if (req.method === 'GET' && (rest === 'v2.0/.well-known/openid-configuration' || rest === '.well-known/openid-configuration')) {
      const found = findTenant(tenantSegment);
      if (!found) return tenantNotFound();
      return answer(200, openIdConfiguration(base, found.id));
    }
    if (req.method === 'GET' && rest === 'discovery/v2.0/keys') {
      if (!findTenant(tenantSegment)) return tenantNotFound();
      return answer(200, { keys: [] });
    }
    if (rest !== 'oauth2/v2.0/token') return answer(404, { error: 'not_found' });
    if (req.method !== 'POST') {
      return fail({
        status: 400,
        error: 'invalid_request',
        code: 900561,
        description: 'The endpoint only accepts POST requests. Received a GET request.',
      });
    }

    const form = Object.fromEntries(new URLSearchParams(body));
    recorded.form = redactForm(form);
    const clientId = form.client_id ?? '';
    const requestedScopes = (form.scope ?? '').split(/\s+/).filter((s) => s && !OIDC_SCOPES.has(s.toLowerCase()));
    const scope = requestedScopes.join(' ');
    recorded.clientId = clientId || undefined;
    recorded.scope = scope || undefined;
    if (clientId) {
      const key = countKey(clientId, scope);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }

    const scripted = failures.shift();
    if (scripted) return fail(scripted);

    const found = findTenant(tenantSegment);
    if (!found) return tenantNotFound();
    const tenantName = found.tenant.domains?.[0] ?? found.id;
    if (form.grant_type !== 'client_credentials') {
      return fail({
        status: 400,
        error: 'unsupported_grant_type',
        code: 70003,
        description: 'The app requested an unsupported grant type. The fake supports only client_credentials.',
      });
    }
    if (!clientId) {
      return fail({ status: 400, error: 'invalid_request', code: 900144, description: "The request body must contain the following parameter: 'client_id'." });
    }
    if (!scope) {
      return fail({ status: 400, error: 'invalid_request', code: 900144, description: "The request body must contain the following parameter: 'scope'." });
    }
    if (requestedScopes.length !== 1 || !/\/\.default$/i.test(scope)) {
      return fail({
        status: 400,
        error: 'invalid_scope',
        code: 1002012,
        description:
          `The provided value for scope ${form.scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
      });
    }
    const app = findApp(found.tenant, clientId);
    if (!app) {
      return fail({
        status: 400,
        error: 'unauthorized_client',
        code: 700016,
        description:
          `Application with identifier '${clientId}' was not found in the directory '${tenantName}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
      });
    }

    let via: TokenInfo['via'];
    if (form.client_secret !== undefined) {
      const accepted = toArray(app.secret).some((secret) => sameString(secret, form.client_secret ?? ''));
      if (!accepted) {
        return fail({
          status: 401,
          error: 'invalid_client',
          code: 7000215,
          description:
            `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
        });
      }
      if (app.expired) {
        return fail({
          status: 401,
          error: 'invalid_client',
          code: 7000222,
          description:
            `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
        });
      }
      via = 'secret';
    } else if (form.client_assertion !== undefined) {
      recorded.assertionHeader = joseHeader(form.client_assertion);
      const problem = checkClientAssertion({
        assertion: form.client_assertion,
        assertionType: form.client_assertion_type,
        clientId,
        audience: `${base}/${tenantSegment}/oauth2/v2.0/token`,
        certificates: toArray(app.certificatePem),
      });
      if (problem) return fail(problem);
      via = 'assertion';
    } else {
      return fail({
        status: 401,
        error: 'invalid_client',
        code: 7000218,
        description: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
      });
    }

    const expiresIn = registry.expiresIn;
    const token = registry.issue({ tenantId: found.id, clientId, scope, via }, 'fake-entra-');
    return answer(200, { token_type: 'Bearer', expires_in: expiresIn, ext_expires_in: expiresIn, access_token: token });
  }

  const port = await listen(server);
  base = `https://127.0.0.1:${port}`;
  return withTokens(registry, {
    url: base,
    port,
    requests,
    tokenRequests: (clientId: string, scope: string) => counts.get(countKey(clientId, scope)) ?? 0,
    failNextToken: (...answers: EntraErrorAnswer[]) => {
      failures.push(...answers);
    },
    close: () => closeServer(server),
  });
}

const countKey = (clientId: string, scope: string): string => `${clientId.toLowerCase()} ${scope.toLowerCase()}`;

function redactForm(form: Record<string, string>): Record<string, string> {
  const copy = { ...form };
  for (const name of ['client_secret', 'client_assertion']) if (name in copy) copy[name] = '[redacted]';
  return copy;
}

function entraErrorBody(error: EntraErrorAnswer, correlationId: string): object {
  const traceId = randomUUID();
  const timestamp = ENTRA_TIMESTAMP();
  return {
    error: error.error,
    error_description:
      `AADSTS${error.code}: ${error.description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
    error_codes: [error.code],
    timestamp,
    trace_id: traceId,
    correlation_id: correlationId,
    error_uri: `https://login.microsoftonline.com/error?code=${error.code}`,
  };
}

function openIdConfiguration(base: string, tenantId: string): object {
  const t = `${base}/${tenantId}`;
  return {
    token_endpoint: `${t}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${t}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${t}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: `${base}/oidc/userinfo`,
    authorization_endpoint: `${t}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${t}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${t}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
    kerberos_endpoint: `${t}/kerberos`,
    tenant_region_scope: 'EU',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

function joseHeader(jwt: string): Record<string, unknown> | undefined {
  try {
    const header = JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString('utf8')) as unknown;
    return header && typeof header === 'object' ? (header as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Checks a jwt-bearer client assertion as Entra does; returns the error to answer, or undefined. */
function checkClientAssertion(input: {
  assertion: string;
  assertionType: string | undefined;
  clientId: string;
  audience: string;
  certificates: string[];
}): EntraErrorAnswer | undefined {
  const invalid = (code: number, description: string): EntraErrorAnswer => ({ status: 401, error: 'invalid_client', code, description });
  if (input.assertionType !== CLIENT_ASSERTION_TYPE) {
    return { status: 400, error: 'invalid_request', code: 90055, description: `The provided client_assertion_type '${input.assertionType ?? ''}' is not supported.` };
  }
  const parts = input.assertion.split('.');
  if (parts.length !== 3) return invalid(50027, 'JWT token is invalid or malformed.');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as Record<string, unknown>;
    payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return invalid(50027, 'JWT token is invalid or malformed.');
  }
  const x5t = typeof header.x5t === 'string' ? header.x5t : undefined;
  const x5tS256 = typeof header['x5t#S256'] === 'string' ? header['x5t#S256'] : undefined;
  const registered = input.certificates.map((pem) => {
    const cert = new X509Certificate(pem);
    return {
      cert,
      x5t: createHash('sha1').update(cert.raw).digest('base64url'),
      x5tS256: createHash('sha256').update(cert.raw).digest('base64url'),
    };
  });
  const match = registered.find((r) => (x5tS256 !== undefined && r.x5tS256 === x5tS256) || (x5t !== undefined && r.x5t === x5t));
  if (!match) {
    const thumbprint = Buffer.from(x5tS256 ?? x5t ?? '', 'base64url').toString('hex').toUpperCase();
    return invalid(
      700027,
      `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${input.clientId}'.]`,
    );
  }
  const signed = Buffer.from(`${headerPart}.${payloadPart}`);
  const signature = Buffer.from(signaturePart, 'base64url');
  let valid = false;
  try {
    if (header.alg === 'RS256') {
      valid = verifySignature('sha256', signed, match.cert.publicKey, signature);
    } else if (header.alg === 'PS256') {
      valid = verifySignature('sha256', signed, {
        key: match.cert.publicKey,
        padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
        saltLength: cryptoConstants.RSA_PSS_SALTLEN_DIGEST,
      }, signature);
    }
  } catch {
    valid = false;
  }
  if (!valid) {
    return invalid(700027, `Client assertion failed signature validation. [Reason - The key was found but the signature is invalid (alg ${String(header.alg)})., Please visit the Azure Portal to see configured keys for app Id '${input.clientId}'.]`);
  }
  if (payload.aud !== input.audience) {
    return invalid(700027, `Client assertion contains an invalid audience. [Reason - The audience '${String(payload.aud)}' is not the token endpoint '${input.audience}'.]`);
  }
  if (payload.iss !== input.clientId || payload.sub !== input.clientId) {
    return invalid(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .");
  }
  const now = Math.floor(Date.now() / 1000);
  const skew = 300;
  if (typeof payload.exp !== 'number' || payload.exp + skew < now || (typeof payload.nbf === 'number' && payload.nbf - skew > now)) {
    return invalid(700024, 'Client assertion is not within its valid time range.');
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Managed identity (App Service protocol)
// ---------------------------------------------------------------------------------------------

export interface ManagedIdentityRequest {
  method: string;
  path: string;
  /** api-version, resource, client_id / principal_id / mi_res_id: never secret. */
  query: Record<string, string>;
  /** Whether X-IDENTITY-HEADER matched (the header itself is not recorded). */
  identityHeaderOk: boolean;
  status: number;
}

export interface FakeManagedIdentity extends TokenIssuer {
  url: string;
  port: number;
  /** IDENTITY_ENDPOINT */
  endpoint: string;
  requests: ManagedIdentityRequest[];
  /** The X-IDENTITY-HEADER expected; change it to act out App Service rotating it under a running process. */
  identityHeader: string;
  /** Token requests for the resource (`https://graph.microsoft.com`, with or without /.default). */
  tokenRequests(resource: string): number;
  close(): Promise<void>;
}

/**
 * The App Service managed-identity endpoint (api-version 2019-08-01) like startFakeIdentityEndpoint
 * in test/secrets/azure-fakes.ts, but recording which resource each token is for so Graph and
 * SMTP fakes can check the audience. A user-assigned identity asked for by client_id must be listed.
 */
export async function startFakeManagedIdentity(options: {
  key: string;
  cert: string;
  identityHeader: string;
  tenantId?: string;
  /** Client id of the system-assigned identity. */
  clientId?: string;
  /** Client ids of user-assigned identities attached to the app. */
  userAssignedClientIds?: string[];
  expiresIn?: number;
}): Promise<FakeManagedIdentity> {
  const requests: ManagedIdentityRequest[] = [];
  const registry = new TokenRegistry(options.expiresIn);
  const counts = new Map<string, number>();
  const state = { identityHeader: options.identityHeader };
  const systemClientId = options.clientId ?? '00000000-0000-0000-0000-00000000c11e';
  const tenantId = options.tenantId ?? '00000000-0000-0000-0000-0000000000a1';

  const server = createServer({ key: options.key, cert: options.cert }, (req, res) => {
    void (async () => {
      await readBody(req);
      const url = new URL(req.url ?? '/', 'https://fake.invalid');
      const recorded: ManagedIdentityRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        identityHeaderOk: sameString(headerValue(req.headers['x-identity-header']) ?? '', state.identityHeader),
        status: 0,
      };
      requests.push(recorded);
      const answer = (status: number, payload: unknown): void => {
        recorded.status = status;
        sendJson(res, status, payload);
      };
      const correlationId = randomUUID();
      if (url.pathname !== '/msi/token' || req.method !== 'GET') return answer(404, { error: 'not_found' });
      if (!recorded.identityHeaderOk) return answer(401, { statusCode: 401, message: 'Unauthorized', correlationId });
      if (recorded.query['api-version'] !== '2019-08-01') {
        return answer(400, { statusCode: 400, message: 'The api-version is not supported.', correlationId });
      }
      const resource = recorded.query.resource;
      if (!resource) return answer(400, { statusCode: 400, message: 'resource is required', correlationId });
      counts.set(resourceOf(resource), (counts.get(resourceOf(resource)) ?? 0) + 1);
      const asked = recorded.query.client_id;
      if (recorded.query.principal_id !== undefined || recorded.query.mi_res_id !== undefined) {
        return answer(400, { statusCode: 400, message: 'Unable to load the proper Managed Identity.', correlationId });
      }
      if (asked !== undefined && !(options.userAssignedClientIds ?? []).some((id) => id.toLowerCase() === asked.toLowerCase())) {
        return answer(400, { statusCode: 400, message: 'Unable to load the proper Managed Identity.', correlationId });
      }
      const clientId = asked ?? systemClientId;
      const token = registry.issue({ tenantId, clientId, scope: resource, via: 'managed-identity' }, 'fake-mi-');
      return answer(200, {
        access_token: token,
        // Wall-clock time: the SDK compares it with Date.now().
        expires_on: String(Math.floor(Date.now() / 1000) + registry.expiresIn),
        resource,
        token_type: 'Bearer',
        client_id: clientId,
      });
    })().catch(() => sendJson(res, 500, { statusCode: 500, message: 'fake' }));
  });

  const port = await listen(server);
  const url = `https://127.0.0.1:${port}`;
  return withTokens(registry, {
    url,
    port,
    endpoint: `${url}/msi/token`,
    requests,
    get identityHeader() {
      return state.identityHeader;
    },
    set identityHeader(value: string) {
      state.identityHeader = value;
    },
    tokenRequests: (resource: string) => counts.get(resourceOf(resource)) ?? 0,
    close: () => closeServer(server),
  });
}

// ---------------------------------------------------------------------------------------------
// Microsoft Graph sendMail
// ---------------------------------------------------------------------------------------------

/** Which app may send as which mailbox (`*` for any); absent = every app may send as every mailbox. */
export type MailboxPermissions = { clientId: string; mailbox: string }[];

/** The apps (or managed identities) given `mailbox`, e.g. `sendAs(SENDER, SECRET_APP, CERT_APP)`. */
export function sendAs(mailbox: string, ...clientIds: string[]): MailboxPermissions {
  return clientIds.map((clientId) => ({ clientId, mailbox }));
}

export interface GraphAnswer extends ErrorAnswer {
  code: string;
  message: string;
}

/** Ready-made Graph error answers for `failNext` / `failMailbox`, with real codes and messages. */
export const GRAPH_ERRORS = {
  invalidRecipients: (): GraphAnswer => ({
    status: 400,
    code: 'ErrorInvalidRecipients',
    message: "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
  }),
  invalidBase64: (): GraphAnswer => ({
    status: 400,
    code: 'ErrorMimeContentInvalidBase64String',
    message: 'Invalid base64 string for MIME content.',
  }),
  accessDenied: (): GraphAnswer => ({
    status: 403,
    code: 'ErrorAccessDenied',
    message: 'Access is denied. Check credentials and try again.',
  }),
  invalidUser: (user: string): GraphAnswer => ({
    status: 404,
    code: 'ErrorInvalidUser',
    message: `The requested user '${user}' is invalid.`,
  }),
  mailboxNotEnabled: (): GraphAnswer => ({
    status: 404,
    code: 'MailboxNotEnabledForRESTAPI',
    message: 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.',
  }),
  throttled: (retryAfterSeconds = 1): GraphAnswer => ({
    status: 429,
    code: 'ApplicationThrottled',
    message: 'Application is over its MailboxConcurrency limit.',
    headers: retryAfter(retryAfterSeconds),
  }),
  serviceUnavailable: (retryAfterSeconds = 1): GraphAnswer => ({
    status: 503,
    code: 'ServiceUnavailable',
    message: 'Service Unavailable',
    headers: retryAfter(retryAfterSeconds),
  }),
} as const;

export interface GraphMessage {
  /** The {id | userPrincipalName} of the path, as sent (decoded). */
  sender: string;
  format: 'json' | 'mime';
  from: string | undefined;
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  text: string | undefined;
  html: string | undefined;
  /** Lower-cased names; JSON: internetMessageHeaders; MIME: every header of the message. */
  headers: Record<string, string>;
  messageId: string | undefined;
  autoSubmitted: string | undefined;
  /** JSON only (MIME sends always save). */
  saveToSentItems: boolean | undefined;
  /** MIME only: the decoded RFC 5322 message. */
  raw: string | undefined;
  parsed: ParsedMail | undefined;
  token: TokenInfo;
}

export interface GraphRequest {
  method: string;
  path: string;
  mailbox: string | undefined;
  contentType: string | undefined;
  clientRequestId: string | undefined;
  /** Client (app) id of the valid token, if any. */
  clientId: string | undefined;
  status: number;
  errorCode?: string;
}

export interface FakeGraph {
  /** Graph base URL (GRAPH_BASE_URL): requests go to `${url}/v1.0/users/{sender}/sendMail`. */
  url: string;
  port: number;
  requests: GraphRequest[];
  messages: GraphMessage[];
  /** Answers the next sendMail requests that pass authentication, in order. */
  failNext(...answers: GraphAnswer[]): void;
  /** Answers every sendMail for this mailbox (case-insensitive) so, until cleared with undefined. */
  failMailbox(mailbox: string, answer: GraphAnswer | undefined): void;
  waitForMessages(n: number, timeoutMs?: number): Promise<GraphMessage[]>;
  close(): Promise<void>;
}

export async function startFakeGraph(options: {
  key: string;
  cert: string;
  validateToken: TokenValidator;
  /** Known mailboxes (UPNs or ids, case-insensitive); others get 404 ErrorInvalidUser. Absent = all exist. */
  mailboxes?: string[];
  permissions?: MailboxPermissions;
}): Promise<FakeGraph> {
  const requests: GraphRequest[] = [];
  const messages: GraphMessage[] = [];
  const queue: GraphAnswer[] = [];
  const perMailbox = new Map<string, GraphAnswer>();
  const waiters = new Waiters();

  const server = createServer({ key: options.key, cert: options.cert }, (req, res) => {
    void handle(req, res).catch(() => sendJson(res, 500, graphErrorBody({ status: 500, code: 'generalException', message: 'fake' }, undefined)));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const url = new URL(req.url ?? '/', 'https://fake.invalid');
    const match = /^\/v1\.0\/users\/([^/]+)\/sendMail$/i.exec(url.pathname);
    const mailbox = match ? decodeURIComponent(match[1] ?? '') : undefined;
    const clientRequestId = headerValue(req.headers['client-request-id']);
    const recorded: GraphRequest = {
      method: req.method ?? '',
      path: url.pathname,
      mailbox,
      contentType: headerValue(req.headers['content-type']),
      clientRequestId,
      clientId: undefined,
      status: 0,
    };
    requests.push(recorded);
    const answer = (status: number, payload?: unknown, headers: Record<string, string> = {}): void => {
      recorded.status = status;
      const requestId = randomUUID();
      const common = { 'request-id': requestId, 'client-request-id': clientRequestId ?? requestId, ...headers };
      if (payload === undefined) {
        res.writeHead(status, { ...common, 'content-length': '0' });
        res.end();
      } else {
        sendJson(res, status, payload, common);
      }
    };
    const fail = (error: GraphAnswer): void => {
      recorded.errorCode = error.code;
      answer(error.status, graphErrorBody(error, clientRequestId), error.headers);
    };

    if (!match || mailbox === undefined) {
      return fail({ status: 400, code: 'BadRequest', message: `Resource not found for the segment '${url.pathname.split('/').pop() ?? ''}'.` });
    }
    if (req.method !== 'POST') {
      return fail({ status: 405, code: 'Request_BadRequest', message: 'Specified HTTP method is not allowed for the request target.' });
    }

    const bearer = /^Bearer\s+(.+)$/i.exec(headerValue(req.headers.authorization) ?? '')?.[1]?.trim();
    if (!bearer) {
      return fail({ status: 401, code: 'InvalidAuthenticationToken', message: 'Access token is empty.' });
    }
    const token = options.validateToken(bearer, GRAPH_RESOURCE);
    if (!token) {
      return fail({ status: 401, code: 'InvalidAuthenticationToken', message: 'Access token validation failure. Invalid audience.' });
    }
    recorded.clientId = token.clientId;

    const scripted = queue.shift() ?? perMailbox.get(mailbox.toLowerCase());
    if (scripted) return fail(scripted);

    if (options.mailboxes && !options.mailboxes.some((m) => m.toLowerCase() === mailbox.toLowerCase())) {
      return fail(GRAPH_ERRORS.invalidUser(mailbox));
    }
    if (!permitted(options.permissions, token.clientId, mailbox)) return fail(GRAPH_ERRORS.accessDenied());

    const contentType = (recorded.contentType ?? '').split(';')[0]?.trim().toLowerCase();
    if (contentType === 'text/plain') {
      const compact = body.replace(/\s+/g, '');
      if (!compact || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
        return fail(GRAPH_ERRORS.invalidBase64());
      }
      const bytes = Buffer.from(compact, 'base64');
      const raw = bytes.toString('utf8');
      const parsed = await simpleParser(bytes);
      const to = addresses(parsed.to);
      const cc = addresses(parsed.cc);
      const bcc = addresses(parsed.bcc);
      if (to.length + cc.length + bcc.length === 0) return fail(GRAPH_ERRORS.invalidRecipients());
      const headers: Record<string, string> = {};
      for (const line of parsed.headerLines) headers[line.key.toLowerCase()] ??= line.line.slice(line.line.indexOf(':') + 1).trim();
      messages.push({
        sender: mailbox,
        format: 'mime',
        from: addresses(parsed.from)[0],
        to,
        cc,
        bcc,
        subject: parsed.subject ?? '',
        text: parsed.text,
        html: typeof parsed.html === 'string' ? parsed.html : undefined,
        headers,
        messageId: parsed.messageId,
        autoSubmitted: headers['auto-submitted'],
        saveToSentItems: undefined,
        raw,
        parsed,
        token,
      });
      waiters.wake();
      return answer(202);
    }
    if (contentType !== 'application/json') {
      return fail({ status: 415, code: 'UnsupportedMediaType', message: `Content-Type '${recorded.contentType ?? ''}' is not supported.` });
    }

    let payload: GraphSendMailJson;
    try {
      payload = JSON.parse(body) as GraphSendMailJson;
    } catch {
      return fail({
        status: 400,
        code: 'BadRequest',
        message: 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.',
      });
    }
    const message = payload?.message;
    if (!message || typeof message !== 'object') {
      return fail({ status: 400, code: 'ErrorInvalidParameter', message: "The value of the parameter 'Message' is empty." });
    }
    const to = recipients(message.toRecipients);
    const cc = recipients(message.ccRecipients);
    const bcc = recipients(message.bccRecipients);
    if (to.length + cc.length + bcc.length === 0) return fail(GRAPH_ERRORS.invalidRecipients());
    const headers: Record<string, string> = {};
    for (const header of message.internetMessageHeaders ?? []) {
      const name = String(header?.name ?? '');
      if (!/^x-/i.test(name)) {
        return fail({
          status: 400,
          code: 'InvalidInternetMessageHeader',
          message: `The internet message header name '${name}' should start with 'x-' or 'X-'.`,
        });
      }
      headers[name.toLowerCase()] = String(header?.value ?? '');
    }
    const contentKind = String(message.body?.contentType ?? 'text').toLowerCase();
    const content = typeof message.body?.content === 'string' ? message.body.content : '';
    messages.push({
      sender: mailbox,
      format: 'json',
      from: message.from?.emailAddress?.address,
      to,
      cc,
      bcc,
      subject: typeof message.subject === 'string' ? message.subject : '',
      text: contentKind === 'html' ? undefined : content,
      html: contentKind === 'html' ? content : undefined,
      headers,
      messageId: typeof message.internetMessageId === 'string' ? message.internetMessageId : undefined,
      autoSubmitted: undefined,
      saveToSentItems: typeof payload.saveToSentItems === 'boolean' ? payload.saveToSentItems : undefined,
      raw: undefined,
      parsed: undefined,
      token,
    });
    waiters.wake();
    return answer(202);
  }

  const port = await listen(server);
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    messages,
    failNext: (...answers) => {
      queue.push(...answers);
    },
    failMailbox: (mailbox, answer) => {
      if (answer) perMailbox.set(mailbox.toLowerCase(), answer);
      else perMailbox.delete(mailbox.toLowerCase());
    },
    waitForMessages: (n, timeoutMs) => waiters.waitFor(() => messages.length >= n, timeoutMs, () => `expected ${n} Graph messages, got ${messages.length}`).then(() => messages),
    close: () => closeServer(server),
  };
}

interface GraphRecipient {
  emailAddress?: { address?: unknown; name?: unknown };
}
interface GraphSendMailJson {
  message?: {
    subject?: unknown;
    body?: { contentType?: unknown; content?: unknown };
    from?: { emailAddress?: { address?: string } };
    toRecipients?: GraphRecipient[];
    ccRecipients?: GraphRecipient[];
    bccRecipients?: GraphRecipient[];
    internetMessageHeaders?: { name?: unknown; value?: unknown }[];
    internetMessageId?: unknown;
  };
  saveToSentItems?: unknown;
}

function recipients(list: GraphRecipient[] | undefined): string[] {
  return (Array.isArray(list) ? list : [])
    .map((r) => r?.emailAddress?.address)
    .filter((a): a is string => typeof a === 'string' && a.length > 0);
}

function addresses(value: ParsedMail['to'] | ParsedMail['from']): string[] {
  const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return list.flatMap((group) => group.value.map((a) => a.address ?? '')).filter(Boolean);
}

function graphErrorBody(error: GraphAnswer, clientRequestId: string | undefined): object {
  const requestId = randomUUID();
  return {
    error: {
      code: error.code,
      message: error.message,
      innerError: {
        date: new Date().toISOString().replace(/\.\d+Z$/, ''),
        'request-id': requestId,
        'client-request-id': clientRequestId ?? requestId,
      },
    },
  };
}

function permitted(permissions: MailboxPermissions | undefined, clientId: string, mailbox: string): boolean {
  if (!permissions) return true;
  return permissions.some(
    (p) => p.clientId.toLowerCase() === clientId.toLowerCase() && (p.mailbox === '*' || p.mailbox.toLowerCase() === mailbox.toLowerCase()),
  );
}

// ---------------------------------------------------------------------------------------------
// SMTP submission with XOAUTH2 (smtp.office365.com-like)
// ---------------------------------------------------------------------------------------------

export interface Xoauth2Delivery {
  /** The authenticated mailbox (XOAUTH2 user=). */
  user: string;
  token: TokenInfo;
  envelopeFrom: string | undefined;
  envelopeTo: string[];
  /** The message as received, CRLF line ends. */
  raw: string;
  parsed: ParsedMail;
}

export interface Xoauth2AuthAttempt {
  method: string;
  username: string;
  accepted: boolean;
  /** The reply sent, e.g. `535 5.7.3 Authentication unsuccessful`. */
  reply: string;
  clientId?: string;
}

export interface FakeXoauth2SmtpServer {
  host: '127.0.0.1';
  port: number;
  authAttempts: Xoauth2AuthAttempt[];
  messages: Xoauth2Delivery[];
  waitForMessages(n: number, timeoutMs?: number): Promise<Xoauth2Delivery[]>;
  close(): Promise<void>;
}

const AUTH_UNSUCCESSFUL = '5.7.3 Authentication unsuccessful';
const BASIC_AUTH_NOT_SUPPORTED = '5.7.30 Basic authentication is not supported for Client Submission.';

/**
 * SMTP on 127.0.0.1 with STARTTLS (the given, trusted test certificate) where only XOAUTH2 with a
 * token for https://outlook.office365.com succeeds. It advertises `AUTH LOGIN PLAIN XOAUTH2` (so a
 * password AUTH reaches it and is refused as Office 365 refuses it); `authMethods` can narrow that,
 * e.g. to `['LOGIN', 'XOAUTH2']`, what smtp.office365.com advertises.
 */
export async function startXoauth2SmtpServer(options: {
  key: string;
  cert: string;
  validateToken: TokenValidator;
  /** Default https://outlook.office365.com. */
  resource?: string;
  /** Password AUTH answers `550 5.7.30 Basic authentication is not supported for Client Submission.` instead of 535. */
  basicAuthDisabled?: boolean;
  permissions?: MailboxPermissions;
  /** Envelope sender must be the authenticated mailbox, else 554 5.2.252 SendAsDenied (default true). */
  enforceSendAs?: boolean;
  authMethods?: string[];
}): Promise<FakeXoauth2SmtpServer> {
  const messages: Xoauth2Delivery[] = [];
  const authAttempts: Xoauth2AuthAttempt[] = [];
  const waiters = new Waiters();
  const resource = options.resource ?? OUTLOOK_RESOURCE;
  const tokenOfSession = new WeakMap<SMTPServerSession, TokenInfo>();

  const refuse = (code: number, message: string): Error & { responseCode: number } =>
    Object.assign(new Error(message), { responseCode: code });

  const server = new SMTPServer({
    key: options.key,
    cert: options.cert,
    name: 'fake.prod.outlook.com',
    banner: 'Microsoft ESMTP MAIL Service ready (fake)',
    authMethods: options.authMethods ?? ['LOGIN', 'PLAIN', 'XOAUTH2'],
    logger: false,
    closeTimeout: 50,
    size: 35 * 1024 * 1024,
    onAuth(auth: SMTPServerAuthentication, session, callback) {
      const attempt: Xoauth2AuthAttempt = { method: auth.method, username: auth.username ?? '', accepted: false, reply: '' };
      authAttempts.push(attempt);
      const reject = (code: number, message: string): void => {
        attempt.reply = `${code} ${message}`;
        callback(refuse(code, message));
      };
      if (auth.method !== 'XOAUTH2') {
        return options.basicAuthDisabled ? reject(550, BASIC_AUTH_NOT_SUPPORTED) : reject(535, AUTH_UNSUCCESSFUL);
      }
      const info = options.validateToken(auth.accessToken ?? '', resource);
      if (!info || !auth.username) return reject(535, AUTH_UNSUCCESSFUL);
      attempt.clientId = info.clientId;
      if (!permitted(options.permissions, info.clientId, auth.username)) return reject(535, AUTH_UNSUCCESSFUL);
      attempt.accepted = true;
      attempt.reply = '235 2.7.0 Authentication successful';
      tokenOfSession.set(session, info);
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (error) => callback(error));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const user = String(session.user ?? '');
        const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined;
        if (options.enforceSendAs !== false && (envelopeFrom ?? '').toLowerCase() !== user.toLowerCase()) {
          return callback(
            refuse(
              554,
              `5.2.252 SendAsDenied; ${user} not allowed to send as ${envelopeFrom ?? ''}; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message [BeginDiagnosticData]Cannot submit message.`,
            ),
          );
        }
        simpleParser(raw)
          .then((parsed) => {
            messages.push({
              user,
              token: tokenOfSession.get(session) as TokenInfo,
              envelopeFrom,
              envelopeTo: session.envelope.rcptTo.map((r) => r.address),
              raw,
              parsed,
            });
            waiters.wake();
            callback(null, '2.6.0 Queued mail for delivery');
          })
          .catch((error: Error) => callback(error));
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  return {
    host: '127.0.0.1',
    port: (server.server.address() as AddressInfo).port,
    authAttempts,
    messages,
    waitForMessages: (n, timeoutMs) => waiters.waitFor(() => messages.length >= n, timeoutMs, () => `expected ${n} SMTP messages, got ${messages.length}`).then(() => messages),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------------------------
// The fakes together, on the test CA's certificate
// ---------------------------------------------------------------------------------------------

export type GraphFakeOptions = Omit<Parameters<typeof startFakeGraph>[0], 'key' | 'cert' | 'validateToken'>;
export type SmtpFakeOptions = Omit<Parameters<typeof startXoauth2SmtpServer>[0], 'key' | 'cert' | 'validateToken'>;

export interface Ms365Fakes<S extends Record<string, SmtpFakeOptions>> {
  graph: FakeGraph;
  /** The XOAUTH2 SMTP servers, by the names given in `smtp`. */
  smtp: { [K in keyof S]: FakeXoauth2SmtpServer };
  /** Closes every fake. */
  close(): Promise<void>;
}

/**
 * Entra ID with these tenants, and Graph and XOAUTH2 SMTP servers that take its tokens, all serving
 * the test CA's server certificate (test/global-setup.ts makes it trusted). Should one fail to start,
 * those started are closed.
 */
export async function startEntraFakes<S extends Record<string, SmtpFakeOptions> = Record<never, SmtpFakeOptions>>(
  ca: Pick<TestCa, 'serverKey' | 'serverCert'>,
  options: { tenants: FakeEntraTenants; graph?: GraphFakeOptions; smtp?: S },
): Promise<Ms365Fakes<S> & { entra: FakeEntraId }> {
  const tls = { key: ca.serverKey, cert: ca.serverCert };
  const entra = await startFakeEntraId({ ...tls, tenants: options.tenants });
  return { entra, ...(await startResourceFakes(tls, entra, options.graph ?? {}, options.smtp ?? ({} as S))) };
}

export interface ManagedIdentityFakesOptions<S extends Record<string, SmtpFakeOptions>> {
  identity: Omit<Parameters<typeof startFakeManagedIdentity>[0], 'key' | 'cert'>;
  graph?: GraphFakeOptions;
  smtp?: S;
}

/** The managed-identity endpoint, and Graph and XOAUTH2 SMTP servers that take its tokens, as startEntraFakes. */
export async function startManagedIdentityFakes<S extends Record<string, SmtpFakeOptions> = Record<never, SmtpFakeOptions>>(
  ca: Pick<TestCa, 'serverKey' | 'serverCert'>,
  options: ManagedIdentityFakesOptions<S>,
): Promise<Ms365Fakes<S> & { identity: FakeManagedIdentity }> {
  const tls = { key: ca.serverKey, cert: ca.serverCert };
  const identity = await startFakeManagedIdentity({ ...tls, ...options.identity });
  return { identity, ...(await startResourceFakes(tls, identity, options.graph ?? {}, options.smtp ?? ({} as S))) };
}

async function startResourceFakes<S extends Record<string, SmtpFakeOptions>>(
  tls: { key: string; cert: string },
  issuer: { validate: TokenValidator; close(): Promise<void> },
  graphOptions: GraphFakeOptions,
  smtpOptions: S,
): Promise<Ms365Fakes<S>> {
  const started: { close(): Promise<void> }[] = [issuer];
  const close = async (): Promise<void> => {
    await Promise.all(started.map((fake) => fake.close()));
  };
  try {
    const validateToken = issuer.validate;
    const graph = await startFakeGraph({ ...tls, validateToken, ...graphOptions });
    started.push(graph);
    const smtp: Record<string, FakeXoauth2SmtpServer> = {};
    for (const [name, options] of Object.entries(smtpOptions)) {
      const server = await startXoauth2SmtpServer({ ...tls, validateToken, ...options });
      started.push(server);
      smtp[name] = server;
    }
    return { graph, smtp: smtp as Ms365Fakes<S>['smtp'], close };
  } catch (error) {
    await close();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// A client certificate for ClientCertificateCredential
// ---------------------------------------------------------------------------------------------

export interface ClientCertificate {
  /** The public certificate: register it on the fake app (`certificatePem`). */
  certificatePem: string;
  privateKeyPem: string;
  /** Certificate then key, the PEM ClientCertificateCredential takes (`{ certificate }` or a file). */
  combinedPem: string;
  /** Upper-case hex, as the Azure portal shows them. */
  thumbprintSha1: string;
  thumbprintSha256: string;
}

/**
 * A self-signed RSA certificate made with openssl (MSAL signs assertions with RS256/PS256, so the
 * test CA's P-256 keys will not do). Nothing is left on disk.
 */
export async function makeClientCertificate(subject = '/CN=gatehouse-test-app'): Promise<ClientCertificate> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-client-cert-'));
  try {
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
      '-days', '2', '-subj', subject,
    ], { cwd: dir });
    const certificatePem = await readFile(join(dir, 'cert.pem'), 'utf8');
    const privateKeyPem = await readFile(join(dir, 'key.pem'), 'utf8');
    const der = new X509Certificate(certificatePem).raw;
    return {
      certificatePem,
      privateKeyPem,
      combinedPem: `${certificatePem.trimEnd()}\n${privateKeyPem}`,
      thumbprintSha1: createHash('sha1').update(der).digest('hex').toUpperCase(),
      thumbprintSha256: createHash('sha256').update(der).digest('hex').toUpperCase(),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Plumbing
// ---------------------------------------------------------------------------------------------

class Waiters {
  private readonly waiting: (() => void)[] = [];

  wake(): void {
    this.waiting.splice(0).forEach((w) => w());
  }

  async waitFor(done: () => boolean, timeoutMs = 10_000, describe: () => string = () => 'timed out'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(describe());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

function toArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function sameString(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}
