import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type Server } from 'node:https';
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';

/** Local stand-ins for Azure Key Vault and the App Service managed-identity endpoint, over HTTPS. */

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization: string | undefined;
  identityHeader: string | undefined;
  body: string;
}

export interface FakeServer {
  url: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export interface FakeKeyVault extends FakeServer {
  /** Lower-cased name → current value; Key Vault names are case-insensitive. */
  secrets: Map<string, { name: string; value: string; version: string }>;
  deleted: Map<string, { name: string; value: string; version: string }>;
}

export interface FakeKeyVaultOptions {
  key: string;
  cert: string;
  /** Put in the challenge's `authorization` parameter, as login.microsoftonline.com would be. */
  authorityUrl: string;
  tenantId: string;
  acceptToken(token: string): boolean;
  /** Items per page of GET /secrets, to make the SDK follow nextLink. */
  pageSize?: number;
  /** Names answered with 403 Forbidden, as when the identity lacks a role. */
  forbiddenNames?: string[];
}

export const VAULT_RESOURCE = 'https://vault.azure.net';

export async function startFakeKeyVault(options: FakeKeyVaultOptions): Promise<FakeKeyVault> {
  const secrets: FakeKeyVault['secrets'] = new Map();
  const deleted: FakeKeyVault['deleted'] = new Map();
  const requests: RecordedRequest[] = [];
  const pageSize = options.pageSize ?? 25;
  const forbidden = new Set((options.forbiddenNames ?? []).map((n) => n.toLowerCase()));
  let base = '';

  const challenge =
    `Bearer authorization="${options.authorityUrl}/${options.tenantId}", resource="${VAULT_RESOURCE}"`;

  const bundle = (entry: { name: string; value: string; version: string }): object => ({
    value: entry.value,
    id: `${base}/secrets/${entry.name}/${entry.version}`,
    attributes: {
      enabled: true,
      created: 1_767_225_600,
      updated: 1_767_225_600,
      recoveryLevel: 'Recoverable+Purgeable',
      recoverableDays: 90,
    },
    tags: {},
  });
  const deletedBundle = (entry: { name: string; value: string; version: string }): object => ({
    ...bundle(entry),
    recoveryId: `${base}/deletedsecrets/${entry.name}`,
    deletedDate: 1_767_225_600,
    scheduledPurgeDate: 1_774_992_000,
  });

  const server = createServer({ key: options.key, cert: options.cert }, (req, res) => {
    void handle(req, res).catch(() => send(res, 500, { error: { code: 'InternalError', message: 'fake' } }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const recorded = await record(req, requests);
    const { path, query } = recorded;

    if (!query['api-version']) {
      return send(res, 400, { error: { code: 'BadParameter', message: 'api-version is missing' } });
    }
    const token = /^Bearer (.+)$/.exec(recorded.authorization ?? '')?.[1];
    if (token === undefined || !options.acceptToken(token)) {
      res.setHeader('WWW-Authenticate', challenge);
      return send(res, 401, {
        error: { code: 'Unauthorized', message: 'AKV10000: Request is missing a Bearer or PoP token.' },
      });
    }

    const secretMatch = /^\/secrets\/([^/]+)\/?([^/]*)$/.exec(path);
    const deletedMatch = /^\/deletedsecrets\/([^/]+)$/.exec(path);
    const name = decodeURIComponent(secretMatch?.[1] ?? deletedMatch?.[1] ?? '');
    const lower = name.toLowerCase();
    if (forbidden.has(lower)) {
      return send(res, 403, {
        error: { code: 'Forbidden', message: 'Caller is not authorized to perform action on resource.' },
      });
    }
    const notFound = (): void =>
      send(res, 404, {
        error: {
          code: 'SecretNotFound',
          message: `A secret with (name/id) ${name} was not found in this key vault.`,
        },
      });

    if (req.method === 'GET' && path === '/secrets') {
      const all = [...secrets.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
      const skip = Number(query.$skiptoken ?? '0');
      const page = all.slice(skip, skip + pageSize);
      const next = skip + pageSize < all.length
        ? `${base}/secrets?api-version=${query['api-version']}&$skiptoken=${skip + pageSize}`
        : null;
      return send(res, 200, {
        value: page.map((entry) => ({ id: `${base}/secrets/${entry.name}`, attributes: { enabled: true } })),
        nextLink: next,
      });
    }
    if (secretMatch && req.method === 'GET') {
      const entry = secrets.get(lower);
      return entry ? send(res, 200, bundle(entry)) : notFound();
    }
    if (secretMatch && req.method === 'PUT') {
      if (deleted.has(lower)) {
        return send(res, 409, {
          error: {
            code: 'Conflict',
            message: `Secret ${name} is currently in a deleted but recoverable state.`,
          },
        });
      }
      const parsed = JSON.parse(recorded.body) as { value?: unknown };
      if (typeof parsed.value !== 'string') {
        return send(res, 400, { error: { code: 'BadParameter', message: 'value is required' } });
      }
      const entry = { name, value: parsed.value, version: randomBytes(16).toString('hex') };
      secrets.set(lower, entry);
      return send(res, 200, bundle(entry));
    }
    if (secretMatch && req.method === 'DELETE') {
      const entry = secrets.get(lower);
      if (!entry) return notFound();
      secrets.delete(lower);
      deleted.set(lower, entry);
      return send(res, 200, deletedBundle(entry));
    }
    if (deletedMatch && req.method === 'GET') {
      const entry = deleted.get(lower);
      return entry ? send(res, 200, deletedBundle(entry)) : notFound();
    }
    return send(res, 405, { error: { code: 'MethodNotAllowed', message: 'fake' } });
  }

  const port = await listen(server);
  base = `https://127.0.0.1:${port}`;
  return { url: base, port, requests, secrets, deleted, close: () => closeServer(server) };
}

export interface FakeIdentityEndpoint extends FakeServer {
  /** IDENTITY_ENDPOINT */
  endpoint: string;
  issuedTokens: string[];
}

/** The App Service managed-identity protocol (api-version 2019-08-01), what IDENTITY_ENDPOINT names. */
export async function startFakeIdentityEndpoint(options: {
  key: string;
  cert: string;
  identityHeader: string;
}): Promise<FakeIdentityEndpoint> {
  const requests: RecordedRequest[] = [];
  const issuedTokens: string[] = [];

  const server = createServer({ key: options.key, cert: options.cert }, (req, res) => {
    void (async () => {
      const recorded = await record(req, requests);
      if (recorded.path !== '/msi/token' || req.method !== 'GET') {
        return send(res, 404, { error: 'not_found' });
      }
      if (recorded.identityHeader !== options.identityHeader) {
        return send(res, 401, { statusCode: 401, message: 'Unauthorized' });
      }
      const resource = recorded.query.resource;
      if (!resource) return send(res, 400, { error: 'invalid_request', error_description: 'resource' });
      const token = `fake-mi-token-${issuedTokens.length + 1}-${randomBytes(12).toString('hex')}`;
      issuedTokens.push(token);
      return send(res, 200, {
        access_token: token,
        // Real wall-clock time: the SDK checks expiry against Date.now().
        expires_on: String(Math.floor(Date.now() / 1000) + 3600),
        resource,
        token_type: 'Bearer',
        client_id: '00000000-0000-0000-0000-00000000c11e',
      });
    })().catch(() => send(res, 500, { error: 'fake' }));
  });

  const port = await listen(server);
  const url = `https://127.0.0.1:${port}`;
  return {
    url,
    port,
    endpoint: `${url}/msi/token`,
    requests,
    issuedTokens,
    close: () => closeServer(server),
  };
}

async function record(req: IncomingMessage, requests: RecordedRequest[]): Promise<RecordedRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const url = new URL(req.url ?? '/', 'https://fake.invalid');
  const recorded: RecordedRequest = {
    method: req.method ?? '',
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    authorization: req.headers.authorization,
    identityHeader: headerValue(req.headers['x-identity-header']),
    body: Buffer.concat(chunks).toString('utf8'),
  };
  requests.push(recorded);
  return recorded;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

/** Listens on an ephemeral port of 127.0.0.1; a client's malformed request only drops its socket. */
export async function listen(server: Server): Promise<number> {
  server.on('error', () => undefined);
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Points DefaultAzureCredential at the fakes and nothing else; returns a function restoring process.env.
 * MSAL keeps the managed-identity source and its token cache in statics for the life of the
 * process, so call this once per test file, before the first credential is built.
 */
export function isolateAzureEnvironment(options: {
  identity: FakeIdentityEndpoint;
  identityHeader: string;
}): () => void {
  const saved = { ...process.env };
  // Nothing from the developer's shell may steer the credential: no real identity, no proxy.
  for (const name of Object.keys(process.env)) {
    if (
      /^(AZURE_|IDENTITY_|MSI_|IMDS_)/.test(name) ||
      name === 'DEFAULT_IDENTITY_CLIENT_ID' ||
      /^(https?|all|no)_proxy$/i.test(name)
    ) {
      delete process.env[name];
    }
  }
  // App Service managed identity, served by our fake (so IMDS at 169.254.169.254 is never tried).
  process.env.IDENTITY_ENDPOINT = options.identity.endpoint;
  process.env.IDENTITY_HEADER = options.identityHeader;
  // Anything that would talk to login.microsoftonline.com talks to our fake instead.
  process.env.AZURE_AUTHORITY_HOST = options.identity.url;
  // Only the credentials that run in production (environment, workload, managed identity):
  // the developer ones would run the `az` CLI, which may be signed in to the real cloud.
  process.env.AZURE_TOKEN_CREDENTIALS = 'prod';
  return () => {
    for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
    Object.assign(process.env, saved);
  };
}

export interface NetworkWatch {
  requests: { host: string; port: string; method: string; path: string }[];
  /** Remote addresses of the sockets those requests used. */
  connections: string[];
  stop(): void;
}

/** Every outgoing HTTP(S) request this process makes, observed through diagnostics_channel, not intercepted. */
export function watchNetwork(): NetworkWatch {
  const requests: NetworkWatch['requests'] = [];
  const connections: string[] = [];
  const onRequest = (message: unknown): void => {
    const request = (message as { request: ClientRequest }).request;
    const hostHeader = String(request.getHeader('host') ?? '');
    requests.push({
      host: request.host,
      port: /:(\d+)$/.exec(hostHeader)?.[1] ?? '443',
      method: request.method,
      path: request.path,
    });
    // The address actually connected to, whatever name resolution did. On Node 20 the channel
    // fires once the request already has its socket.
    const record = (socket: Socket): void => {
      if (socket.remoteAddress) connections.push(socket.remoteAddress);
      else socket.once('connect', () => connections.push(socket.remoteAddress ?? '?'));
    };
    if (request.socket) record(request.socket);
    else request.once('socket', record);
  };
  const onFetch = (message: unknown): void => {
    const url = new URL((message as { request: { origin: string } }).request.origin);
    requests.push({ host: url.hostname, port: url.port, method: 'fetch', path: '' });
  };
  subscribe('http.client.request.start', onRequest);
  subscribe('undici:request:create', onFetch);
  return {
    requests,
    connections,
    stop() {
      unsubscribe('http.client.request.start', onRequest);
      unsubscribe('undici:request:create', onFetch);
    },
  };
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
