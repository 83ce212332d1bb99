import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';
import type { Clock } from '../clock.js';
import type { Random } from '../random.js';
import { createLoopbackMailer, DEV_INBOX_FROM, type Mailer } from './transport.js';

export interface CapturedMessage {
  id: string;
  at: string;
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string | null;
}

export interface DevInbox {
  readonly port: number;
  /** a Mailer that delivers over real SMTP to the embedded server */
  readonly mailer: Mailer;
  list(): CapturedMessage[];
  find(id: string): CapturedMessage | undefined;
  close(): Promise<void>;
}

const KEEP_MESSAGES = 200;

/**
 * An SMTP server on 127.0.0.1 that keeps the last messages in memory, so a new install completes
 * the whole recovery flow with `npm start` alone. Never started in production.
 */
export async function startDevInbox(deps: { clock: Clock; random: Random }): Promise<DevInbox> {
  const messages: CapturedMessage[] = [];
  const server = new SMTPServer({
    authOptional: true,
    // Loopback only: nothing to encrypt, and no certificate to make up.
    disabledCommands: ['STARTTLS', 'AUTH'],
    size: 1024 * 1024,
    logger: false,
    banner: 'Gatehouse dev mailbox',
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          messages.unshift({
            id: deps.random.uuid(),
            at: deps.clock.now().toISOString(),
            from: parsed.from?.text ?? '',
            to: session.envelope.rcptTo.map((r) => r.address).join(', '),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : null,
          });
          messages.length = Math.min(messages.length, KEEP_MESSAGES);
          callback();
        })
        .catch((err: Error) => callback(err));
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  const mailer = createLoopbackMailer(port, DEV_INBOX_FROM);
  return {
    port,
    mailer,
    list: () => messages.slice(),
    find: (id) => messages.find((m) => m.id === id),
    close: () =>
      new Promise<void>((resolve) => {
        mailer.close();
        server.close(() => resolve());
      }),
  };
}
