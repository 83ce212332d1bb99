import type net from 'node:net';
import { clip, errorText, fail, type Failure, oneLine } from './advice.js';
import { GraphError, graphSendMail, type GraphSituation } from './graph.js';
import { connectFirst } from './net-probe.js';
import { upgradeToTls, tlsFailure, type TlsTarget } from './tls-probe.js';
import type { ProbeContext, ProbeSession, TransportCheck } from './transport-check.js';
import { composeMime, SENDER_NAME, type OutgoingMessage } from './transport.js';

/*
 * The staged check's Microsoft Graph probe: reach GRAPH_BASE_URL's host (connect, then a TLS
 * handshake that names the certificate it saw), then send the test message with sendMail, with
 * the same request the outbox makes. Graph answers in JSON with its own error codes: each is a
 * situation of advice.ts.
 */

export const graphCheck: TransportCheck = {
  stages: ['connect', 'tls', 'send'],
  describe: (settings) => `Microsoft Graph sendMail as ${settings.senderAddress ?? `the address in "${settings.emailSecretName}"`}, app ${settings.clientId ?? '(managed identity)'} ${settings.entraCredential === 'managed-identity' ? 'by managed identity' : `with a ${settings.entraCredential === 'certificate' ? 'certificate' : 'client secret'}`}`,
  open: openGraphProbe,
};

export const TEST_MESSAGE: Omit<OutgoingMessage, 'to'> = {
  subject: 'Gatehouse test email',
  text: ['This is a test message from Gatehouse.', '', 'If you can read it, the sender email settings work: password-reset emails can be delivered.'].join('\n'),
  html: '<p>This is a test message from Gatehouse.</p><p>If you can read it, the sender email settings work: password-reset emails can be delivered.</p>',
};

function openGraphProbe(ctx: ProbeContext): ProbeSession {
  const url = new URL(ctx.graphBaseUrl);
  const port = url.port === '' ? 443 : Number(url.port);
  const where = `${url.hostname}:${port}`;
  let socket: net.Socket | undefined;
  const cleanup: (() => void)[] = [];
  const target: TlsTarget = { address: ctx.addresses[0]!, port, host: ctx.host, servername: /^[\d.]+$|:/.test(ctx.host) ? undefined : ctx.host, base: { minVersion: 'TLSv1.2' } };

  return {
    async connect() {
      socket = await connectFirst(ctx.addresses, port, ctx.timeouts.connect, where);
      cleanup.push(() => socket?.destroy());
      target.address = socket.remoteAddress ?? target.address;
      return `connected to ${target.address}:${port}`;
    },

    async tls() {
      try {
        const { socket: secured, describe } = await upgradeToTls(socket!, target, ctx.timeouts.greeting);
        cleanup.push(() => secured.destroy());
        return describe;
      } catch (err) {
        throw tlsFailure(err, target);
      }
    },

    async send() {
      const mime = await composeMime({ name: SENDER_NAME, address: ctx.credentials.from }, { ...TEST_MESSAGE, to: ctx.to }, ctx.messageIdDomain);
      try {
        await graphSendMail({ baseUrl: ctx.graphBaseUrl, sender: ctx.credentials.from, token: ctx.accessToken!, mime, timeoutMs: ctx.timeouts.socket });
      } catch (err) {
        throw graphFailure(err, ctx.credentials.from, where);
      }
      return `accepted for ${ctx.to} (202 Accepted)`;
    },

    close() {
      for (const fn of cleanup) fn();
    },
  };
}

function graphFailure(err: unknown, sender: string, where: string): Failure {
  if (err instanceof GraphError) {
    const facts = { sender, retryAfter: err.retryAfterSeconds ?? 60 };
    return fail(err.situation satisfies GraphSituation, /[.!?]$/.test(err.message) ? err.message : `${err.message}.`, facts);
  }
  const cause = (err as { cause?: unknown }).cause;
  return fail('https-failed', `The request to ${where} failed: ${clip(oneLine(errorText(cause ?? err)))}`);
}
