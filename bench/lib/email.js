// Email delivery: reset emails through Gatehouse's outbox worker to the SMTP sink, and the same
// messages sent straight to the sink by nodemailer with a given pool (the ceiling).
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import nodemailer from 'nodemailer';
import { cannon, processCpuMs, round, threadCpuMs } from './load.js';
import { ROOT, cloneDataDir, outboxCounts, startGatehouse, userEmail } from './gatehouse.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * `emails` forgot-password requests for known users (10 connections), then the wait until the
 * sink has them all: emails/s from the first request to the last email.
 * @param {{ templateDir: string, env?: Record<string, string>, users: number, emails: number,
 *           sinkStats: () => Promise<any>, sinkReset: () => Promise<any>, assertAlive: (server: any) => void }} o
 */
export async function deliverViaWorker(o) {
  const server = await startGatehouse(cloneDataDir(o.templateDir, 'mail'), o.env);
  try {
    await o.sinkReset();
    const bodies = Array.from({ length: o.users }, (_, i) => ({ email: userEmail(i) }));
    const cpu0 = processCpuMs(server.child.pid);
    const main0 = threadCpuMs(server.child.pid);
    const t0 = Date.now();
    const m = await cannon({ url: server.url, path: '/api/auth/forgot-password', bodies, headers: { origin: server.origin }, connections: 10, amount: o.emails });
    const enqueuedAt = Date.now();
    o.assertAlive(server);
    // Every accepted request is one email (all addresses are known, no limit is on).
    const expected = m.statusCodes['202'] ?? 0;
    let s = await o.sinkStats();
    const deadline = Date.now() + 60_000;
    while (s.count < expected && Date.now() < deadline) {
      await sleep(25);
      s = await o.sinkStats();
    }
    const cpu1 = processCpuMs(server.child.pid);
    const main1 = threadCpuMs(server.child.pid);
    const perEmail = (a, b) => (a !== undefined && b !== undefined && s.count > 0 ? Math.round(((b - a) * 1000) / s.count) : undefined);
    const doneAt = s.lastAtMs || Date.now();
    return {
      env: o.env ?? {},
      requests: m.total,
      accepted: expected,
      statusCodes: m.statusCodes,
      enqueueSeconds: round((enqueuedAt - t0) / 1000, 2),
      received: s.count,
      complete: s.count >= expected,
      secondsToLastEmail: round((doneAt - t0) / 1000, 2),
      emailsPerSecond: round(s.count / Math.max((doneAt - t0) / 1000, 0.001)),
      emailsPerSecondFirstToLast: round((s.count - 1) / Math.max((s.lastAtMs - s.firstAtMs) / 1000, 0.001)),
      smtpConnectionsOpened: s.connections,
      smtpConnectionsAtOnce: s.peakOpen,
      // request + worker + SMTP client, per email
      serverCpuUsPerEmail: perEmail(cpu0, cpu1),
      // the request path's share; the rest is the outbox thread (and GC, libuv)
      mainThreadCpuUsPerEmail: perEmail(main0, main1),
      outbox: outboxCounts(server.dataDir).outbox,
    };
  } finally {
    await server.stop();
  }
}

/** Gatehouse's own reset message (from dist/), or one of the same size when it cannot be loaded. */
async function messageMaker() {
  const templates = await import(path.join(ROOT, 'dist', 'mail', 'templates.js')).catch(() => undefined);
  return (i) =>
    templates?.resetPasswordEmail
      ? templates.resetPasswordEmail({ to: userEmail(i), name: `Bench user ${i}`, link: `http://127.0.0.1/reset-password#token=${randomBytes(32).toString('base64url')}`, validMinutes: 60 })
      : { to: userEmail(i), subject: 'Reset your password', text: 'x'.repeat(600), html: `<p>${'x'.repeat(1500)}</p>` };
}

/**
 * The sink's acceptance rate for a client of the server's shape: nodemailer pooled with
 * `maxConnections` × 100 messages, `emails` messages handed over at once.
 * @param {{ sinkPort: number, emails: number, users: number, maxConnections: number, sinkStats: () => Promise<any>, sinkReset: () => Promise<any> }} o
 */
export async function sendDirect(o) {
  await o.sinkReset();
  const message = await messageMaker();
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: o.sinkPort, secure: false, ignoreTLS: true, pool: true, maxConnections: o.maxConnections, maxMessages: 100 });
  const d0 = Date.now();
  const cpuBefore = process.cpuUsage();
  try {
    await Promise.all(Array.from({ length: o.emails }, (_, i) => transport.sendMail({ from: 'bench-sender@example.com', ...message(i % o.users) })));
  } finally {
    transport.close();
  }
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = round((Date.now() - d0) / 1000, 2);
  const s = await o.sinkStats();
  return {
    emails: o.emails,
    maxConnections: o.maxConnections,
    seconds,
    emailsPerSecond: round(o.emails / Math.max(seconds, 0.001)),
    smtpConnectionsAtOnce: s.peakOpen,
    // rendering + nodemailer, in this process: what sending alone costs a client
    clientCpuUsPerEmail: Math.round((cpu.user + cpu.system) / o.emails),
  };
}
