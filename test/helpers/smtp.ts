import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import type { TestCa } from './tls.js';

export interface TestSmtpServer {
  port: number;
  messages: ParsedMail[];
  /** how many times a client tried AUTH */
  authAttempts: number;
  /** resolves once at least n messages have arrived */
  waitForMessages(n: number, timeoutMs?: number): Promise<ParsedMail[]>;
  close(): Promise<void>;
}

/**
 * A real SMTP server on 127.0.0.1 for flow tests: STARTTLS with the trusted test certificate and
 * AUTH with the given credentials by default.
 */
export async function startTestSmtpServer(options: {
  ca: TestCa;
  port?: number;
  credentials?: { user: string; pass: string } | null;
  smtp?: Partial<SMTPServerOptions>;
}): Promise<TestSmtpServer> {
  const messages: ParsedMail[] = [];
  const waiters: (() => void)[] = [];
  const state = { authAttempts: 0 };
  const credentials = options.credentials === undefined ? { user: 'sender@example.com', pass: 'smtp-pass' } : options.credentials;
  const server = new SMTPServer({
    key: options.ca.serverKey,
    cert: options.ca.serverCert,
    authOptional: credentials === null,
    disabledCommands: credentials === null ? ['AUTH'] : [],
    logger: false,
    // close() must not wait for a client's pooled idle connection
    closeTimeout: 50,
    onAuth(auth, _session, callback) {
      state.authAttempts++;
      if (credentials && auth.username === credentials.user && auth.password === credentials.pass) return callback(null, { user: auth.username });
      const err = Object.assign(new Error('5.7.8 Username and Password not accepted'), { responseCode: 535 });
      return callback(err);
    },
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          messages.push(parsed);
          waiters.splice(0).forEach((w) => w());
          callback();
        })
        .catch(callback);
    },
    ...options.smtp,
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.server.address() as AddressInfo).port,
    messages,
    get authAttempts() {
      return state.authAttempts;
    },
    async waitForMessages(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`expected ${n} messages, got ${messages.length}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return messages;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
