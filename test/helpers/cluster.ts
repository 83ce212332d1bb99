import type { AddressInfo } from 'node:net';
import fs from 'node:fs';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { startServer, tempDataDir, type RunningServer } from './cli.js';
import type { TestCa } from './tls.js';

/*
 * Several built Gatehouse servers sharing one database (and Redis), as behind a load balancer,
 * and the pieces the multi-instance tests use around them: an SMTP server that records every
 * message with the session and the AUTH user that delivered it, sign-in, and saving the email
 * settings through the API. Used by test/cluster/*.test.ts; the API below is meant to stay small
 * and stable.
 */

/** One `gatehouse serve` process of a cluster. */
export interface ClusterInstance {
  /** 'A', 'B', 'C', … in start order */
  name: string;
  /** where this process listens (http://127.0.0.1:<port>) */
  url: string;
  /** its own DATA_DIR, removed by Cluster.stop() */
  dataDir: string;
  server: RunningServer;
}

export interface Cluster {
  instances: ClusterInstance[];
  /** The instance by name ('A'…). Throws for an unknown name. */
  get(name: string): ClusterInstance;
  /** SIGTERM to every instance at once, waits for all of them to exit, removes their DATA_DIRs. Safe to call twice. */
  stop(): Promise<void>;
}

export const INSTANCE_NAMES = ['A', 'B', 'C', 'D', 'E', 'F'] as const;

/**
 * Starts `size` instances at the same moment (each `startServer` from cli.ts: the built server on
 * a free port, waited for until /healthz answers), each with its own DATA_DIR. Every instance gets
 * `env`, then `envOf(name)` on top. When one fails to start, the others are stopped and the error
 * (with that instance's stderr) is thrown.
 */
export async function startCluster(options: { size: number; env: Record<string, string>; envOf?: (name: string) => Record<string, string> }): Promise<Cluster> {
  const names = INSTANCE_NAMES.slice(0, options.size);
  if (names.length !== options.size) throw new Error(`a cluster has at most ${INSTANCE_NAMES.length} instances`);
  const dataDirs = names.map(() => tempDataDir());
  const started = await Promise.allSettled(
    names.map((name, i) => startServer({ ...options.env, DATA_DIR: dataDirs[i]!, ...(options.envOf?.(name) ?? {}) })),
  );
  const instances: ClusterInstance[] = [];
  const failures: string[] = [];
  started.forEach((result, i) => {
    if (result.status === 'fulfilled') instances.push({ name: names[i]!, url: result.value.url, dataDir: dataDirs[i]!, server: result.value });
    else failures.push(`instance ${names[i]}: ${(result.reason as Error).message}`);
  });
  let stopped: Promise<void> | undefined;
  const cluster: Cluster = {
    instances,
    get(name) {
      const found = instances.find((instance) => instance.name === name);
      if (found === undefined) throw new Error(`no instance ${name} in this cluster`);
      return found;
    },
    stop() {
      stopped ??= (async () => {
        await Promise.all(instances.map((instance) => instance.server.stop()));
        for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  if (failures.length > 0) {
    await cluster.stop();
    throw new Error(`the cluster did not start:\n${failures.join('\n')}`);
  }
  return cluster;
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/**
 * A JSON request to one instance, as a browser on PUBLIC_URL sends it (Origin: origin); the
 * session cookie when given. Resolves with the response, whatever its status.
 */
export function callApi(
  baseUrl: string,
  method: string,
  path: string,
  options: { origin: string; body?: unknown; cookie?: string },
): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      origin: options.origin,
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.cookie === undefined ? {} : { cookie: options.cookie }),
    },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
}

/** POST /api/auth/login on one instance; the `name=value` of its session cookie. Throws unless 200. */
export async function signIn(baseUrl: string, origin: string, login: string, password: string): Promise<string> {
  const res = await callApi(baseUrl, 'POST', '/api/auth/login', { origin, body: { login, password } });
  if (res.status !== 200) throw new Error(`sign-in of ${login} at ${baseUrl} answered ${res.status}: ${await res.text()}`);
  const cookie = res.headers.getSetCookie().find((c) => /^(__Host-)?gatehouse_session=/.test(c));
  if (cookie === undefined) throw new Error(`sign-in of ${login} at ${baseUrl} set no session cookie`);
  return cookie.split(';')[0]!;
}

/** The SMTP part of the Settings page's email form (transport smtp, secrets by name). */
export interface SmtpSettingsInput {
  host: string;
  port: number;
  emailSecretName: string;
  passwordSecretName: string | null;
  sslEnabled: boolean;
}

/**
 * PUT /api/settings/email as a signed-in admin, with the admin's password (the first save asks
 * for it). Throws unless 200; resolves with the answer's JSON (`secretsResolve` and the rest).
 */
export async function saveEmailSettings(baseUrl: string, origin: string, cookie: string, settings: SmtpSettingsInput, currentPassword: string): Promise<Record<string, unknown>> {
  const res = await callApi(baseUrl, 'PUT', '/api/settings/email', { origin, cookie, body: { ...settings, currentPassword } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`saving the email settings at ${baseUrl} answered ${res.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------------------------

/** A message as the counting SMTP server received it. */
export interface CountedMessage {
  /** the Message-ID header, <…@…>; '' when there was none */
  messageId: string;
  /** the envelope's recipients (RCPT TO), as sent */
  to: string[];
  /** the envelope's sender (MAIL FROM) */
  from: string;
  /** the user that AUTH named on the connection that delivered it */
  authUser: string | undefined;
  /** the SMTP session (one per client connection) that delivered it */
  sessionId: string;
  /** when the server accepted it (ms since the epoch) */
  receivedAtMs: number;
  /** the whole message as received */
  raw: string;
}

export interface CountingSmtpServer {
  port: number;
  /** every message accepted, in arrival order */
  messages: CountedMessage[];
  /** client connections so far */
  readonly connections: number;
  /** the messages one of whose recipients is `address` (compared case-insensitively) */
  to(address: string): CountedMessage[];
  /** resolves once `count(messages)` reaches n; rejects with what arrived after timeoutMs */
  waitFor(what: string, count: (messages: CountedMessage[]) => number, n: number, timeoutMs?: number): Promise<void>;
  /** the parsed message (mailparser), for its text and links */
  parse(message: CountedMessage): Promise<ParsedMail>;
  close(): Promise<void>;
}

/**
 * A real SMTP server on 127.0.0.1 that records every message it accepts: STARTTLS with the test
 * CA's certificate, AUTH required with `password` for any user name (so each instance may
 * authenticate as a user of its own, and every message can be told apart by who sent it).
 * Messages are kept raw; only the Message-ID header is read on arrival, so a thousand cost little.
 */
export async function startCountingSmtpServer(options: { ca: TestCa; password: string }): Promise<CountingSmtpServer> {
  const messages: CountedMessage[] = [];
  const waiters = new Set<() => void>();
  let connections = 0;
  const server = new SMTPServer({
    key: options.ca.serverKey,
    cert: options.ca.serverCert,
    logger: false,
    // close() must not wait for the clients' pooled idle connections
    closeTimeout: 50,
    size: 1_000_000,
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onAuth(auth, _session, callback) {
      if (auth.password === options.password) return callback(null, { user: auth.username });
      return callback(Object.assign(new Error('5.7.8 Username and Password not accepted'), { responseCode: 535 }));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const head = raw.slice(0, Math.max(0, raw.indexOf('\r\n\r\n')));
        messages.push({
          messageId: /^message-id:\s*(<[^>\r\n]*>)/im.exec(head)?.[1] ?? '',
          to: session.envelope.rcptTo.map((r) => r.address),
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          authUser: typeof session.user === 'string' ? session.user : undefined,
          sessionId: session.id,
          receivedAtMs: Date.now(),
          raw,
        });
        for (const wake of waiters) wake();
        callback();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.server.address() as AddressInfo).port,
    messages,
    get connections() {
      return connections;
    },
    to: (address) => messages.filter((m) => m.to.some((t) => t.toLowerCase() === address.toLowerCase())),
    async waitFor(what, count, n, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (count(messages) < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${what}: ${count(messages)} of ${n}`);
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            waiters.delete(done);
            resolve();
          };
          const timer = setTimeout(done, left);
          waiters.add(done);
        });
      }
    },
    parse: (message) => simpleParser(message.raw),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The token of a reset or set-password link (…/reset-password#token=…) in an email's text. */
export function linkTokenOf(text: string): string {
  const match = /reset-password#token=([A-Za-z0-9_-]{43})/.exec(text);
  if (match === null) throw new Error(`no reset link in: ${text.slice(0, 300)}`);
  return match[1]!;
}
