import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { createDb } from '../../src/db/index.js';
import { normalizeEmail } from '../../src/accounts/identifiers.js';
import { createMemoryRateLimiter, type RateLimiter } from '../../src/limits/rate-limiter.js';
import { normalizeEmailSettings, saveEmailSettings } from '../../src/mail/settings.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';
import { assertBuilt } from '../helpers/cli.js';
import { startOutboxThread, type OutboxControl } from '../../src/mail/index.js';
import { createLogger } from '../../src/logger.js';
import { findTrustedTestCa } from '../helpers/tls.js';
import { median, quantile, wilcoxonSignedRank, type WilcoxonResult } from './support/stats.js';

// Issue 4 item 1, timing: the forgot-password answer takes as long for an address with an account
// as for one without (ASVS 5.0 6.3.8). The app listens on 127.0.0.1 with its outbox worker
// running and sending to a real SMTP server (STARTTLS + AUTH), so a known address's worker work —
// look-up, token mint, render, SMTP send — shares the app's event loop with the requests being
// timed. The stopwatch and the SMTP server run in worker threads of their own: neither costs the
// app's event loop anything a remote client or mail server would not.
//
// Design: on one kept-alive connection, blocks of two adjacent pairs — (known, unknown) and
// (control, unknown), each pair in random order, the pairs in random order — so that drift and
// load hit both sides of a pair alike, and the worker's after-work for a known address lands on
// its unknown partner whenever the known one goes first (a slowed *next* response shows as a
// negative difference). The verdict is read from effect sizes — median of the paired differences
// and difference of the 10th percentiles, both ways — not from p: with hundreds of pairs a few
// microseconds would be "significant". The control is an address without an account made 1 ms
// slower through the rate-limiter port (no change to src/); the same Wilcoxon test must see it,
// or the run could not have seen a leak: inconclusive, which fails.

const PAIRS = 600;
const WARMUP_BLOCKS = 150;
const POOL = 20;
const LIMIT_MS = 0.1;
const CONTROL_DELAY_MS = 1;

const SMTP_USER = 'sender@example.com';
const SMTP_PASS = 'sink-password';

/** Equal-length addresses, so no body is longer than another. */
const known = (i: number): string => `kn-${String(i % POOL).padStart(4, '0')}@example.com`;
const control = (i: number): string => `ct-${String(i).padStart(4, '0')}@example.com`;
const unknown = (i: number): string => `un-${String(i).padStart(4, '0')}@example.com`;

/**
 * Exactly `ms` more work on the event loop, as a slower code path for some accounts would be. A
 * timer would not do: under load a 1 ms setTimeout or setImmediate loop overshoots by a varying
 * amount, and the control must measure the statistic, not the machine.
 */
function spinMs(ms: number): void {
  const until = process.hrtime.bigint() + BigInt(Math.round(ms * 1e6));
  while (process.hrtime.bigint() < until) {
    // busy: the point is to take the time
  }
}

/** The app's limiter, unchanged except that a hit on a control address's key takes 1 ms longer. */
function withControlDelay(inner: RateLimiter, delayedKeys: ReadonlySet<string>): RateLimiter {
  return {
    ...inner,
    async hit(key, limit, windowSeconds) {
      const result = await inner.hit(key, limit, windowSeconds);
      if (delayedKeys.has(key)) spinMs(CONTROL_DELAY_MS);
      return result;
    },
  };
}

interface SmtpSink {
  port: number;
  received(): Promise<number>;
  close(): Promise<void>;
}

async function startSmtpSink(tls: { key: string; cert: string } | undefined): Promise<SmtpSink> {
  const worker = new Worker(new URL('./support/smtp-sink.mjs', import.meta.url), {
    workerData: { key: tls?.key, cert: tls?.cert, user: SMTP_USER, pass: SMTP_PASS, tls: tls !== undefined },
  });
  const next = (type: string): Promise<Record<string, number>> =>
    new Promise((resolve, reject) => {
      const done = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
      };
      const onMessage = (m: { type: string } & Record<string, number>): void => {
        if (m.type !== type) return;
        done();
        resolve(m);
      };
      const onError = (err: Error): void => {
        done();
        reject(err);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
    });
  const { port } = await next('listening');
  return {
    port: port!,
    async received() {
      const answer = next('count');
      worker.postMessage({ type: 'count' });
      return (await answer).received!;
    },
    async close() {
      const closed = next('closed');
      worker.postMessage({ type: 'close' });
      await closed;
      await worker.terminate();
    },
  };
}

/** Times each forgot-password request, in order, from a worker thread. Nanoseconds. */
function timeRequests(port: number, emails: string[]): Promise<Float64Array> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./support/timing-client.mjs', import.meta.url), {
      workerData: { port, path: '/api/auth/forgot-password', emails },
    });
    worker.once('message', (durations: Float64Array) => resolve(durations));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`timing client exited with ${code}`));
    });
  });
}

interface Comparison {
  label: string;
  wilcoxon: WilcoxonResult;
  /** median of the paired differences a − b, ms */
  medianPairedMs: number;
  /** median(a) − median(b), ms */
  medianMs: number;
  /** p10(a) − p10(b), ms: the low percentile is where remote timing attacks look */
  p10Ms: number;
  /** p90(a) − p90(b), ms: reported only, the tail is where the machine's own load shows */
  p90Ms: number;
  /** spread of the paired differences: the noise the verdict is read against */
  iqrPairedMs: number;
}

function compare(label: string, a: number[], b: number[]): Comparison {
  const ms = (ns: number): number => ns / 1e6;
  const diffs = a.map((x, i) => x - b[i]!);
  return {
    label,
    wilcoxon: wilcoxonSignedRank(diffs),
    medianPairedMs: ms(median(diffs)),
    medianMs: ms(median(a) - median(b)),
    p10Ms: ms(quantile(a, 0.1) - quantile(b, 0.1)),
    p90Ms: ms(quantile(a, 0.9) - quantile(b, 0.9)),
    iqrPairedMs: ms(quantile(diffs, 0.75) - quantile(diffs, 0.25)),
  };
}

function report(c: Comparison): string {
  const f = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(4)} ms`;
  return `${c.label.padEnd(36)} median of paired diffs ${f(c.medianPairedMs)} | median diff ${f(c.medianMs)} | p10 diff ${f(c.p10Ms)} | p90 diff ${f(c.p90Ms)} | IQR of paired diffs ${c.iqrPairedMs.toFixed(4)} ms | Wilcoxon n=${c.wilcoxon.n} z=${c.wilcoxon.z.toFixed(2)} p=${c.wilcoxon.p.toExponential(2)}`;
}

describe('forgot-password response time', () => {
  let ctx: TestContext;
  let sink: SmtpSink;
  let dir: string;
  let port: number;
  let tlsOn = false;
  let outboxThread: OutboxControl | undefined;

  beforeAll(async () => {
    const ca = await findTrustedTestCa();
    if (ca === undefined) console.warn('!!!!!!!! timing test: the test CA is missing, the SMTP sink runs without TLS (install openssl) !!!!!!!!');
    tlsOn = ca !== undefined;
    sink = await startSmtpSink(ca && { key: ca.serverKey, cert: ca.serverCert });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-timing-'));
    const db = createDb({ kind: 'sqlite', file: path.join(dir, 'gatehouse.sqlite') });
    const secrets = createMemorySecretStore({ 'smtp-sender': SMTP_USER, 'smtp-password': SMTP_PASS });
    const controlKeys = new Set(Array.from({ length: WARMUP_BLOCKS + PAIRS }, (_, i) => `forgot:address:${normalizeEmail(control(i))}`));
    // The delivery worker runs as in production: the built thread, with its own connection to the same file.
    assertBuilt();
    outboxThread = startOutboxThread(
      {
        env: {
          DATABASE_URL: `sqlite:${path.join(dir, 'gatehouse.sqlite')}`,
          SECRETS_PROVIDER: 'env',
          GATEHOUSE_SECRET_SMTP_SENDER: SMTP_USER,
          GATEHOUSE_SECRET_SMTP_PASSWORD: SMTP_PASS,
          MAIL_DEV_INBOX: 'false',
          LOG_LEVEL: 'silent',
        },
        devInboxPort: undefined,
      },
      { logger: createLogger('silent'), entry: new URL('../../dist/outbox-thread.js', import.meta.url) },
    );
    ctx = await makeTestApp({
      db,
      env: { LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0', LIMIT_FORGOT_PER_IP_PER_MINUTE: '0' },
      deps: { clock: systemClock, secrets, limiter: withControlDelay(createMemoryRateLimiter(systemClock), controlKeys), outbox: outboxThread },
    });
    for (let i = 0; i < POOL; i++) await addUser(ctx, { email: known(i) });
    await saveEmailSettings(db, systemClock, normalizeEmailSettings({ host: '127.0.0.1', port: sink.port, emailSecretName: 'smtp-sender', passwordSecretName: 'smtp-password', sslEnabled: tlsOn }), null);
    outboxThread.start();
    await ctx.app.listen({ host: '127.0.0.1', port: 0 });
    port = (ctx.app.server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await outboxThread?.stop();
    await ctx?.close();
    await sink?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`does not depend on the account: ${PAIRS} interleaved pairs, with a 1 ms positive control that the same test must detect`, { timeout: 90_000 }, async () => {
    const roles = ['known', 'unknown', 'control', 'unknown2'] as const;
    type Role = (typeof roles)[number];
    const emails: string[] = [];
    const slots: Record<Role, number>[] = [];
    let unknownCount = 0;
    for (let block = 0; block < WARMUP_BLOCKS + PAIRS; block++) {
      // Two adjacent pairs, each in random order, the pairs themselves in random order.
      const coin = (): boolean => randomInt(2) === 0;
      const pairs: Role[][] = [coin() ? ['known', 'unknown'] : ['unknown', 'known'], coin() ? ['control', 'unknown2'] : ['unknown2', 'control']];
      const order = (coin() ? pairs : pairs.reverse()).flat();
      const slot = {} as Record<Role, number>;
      for (const role of order) {
        slot[role] = emails.length;
        emails.push(role === 'known' ? known(block) : role === 'control' ? control(block) : unknown(unknownCount++));
      }
      slots.push(slot);
    }

    const startedAt = performance.now();
    const durations = await timeRequests(port, emails);
    const measuredForMs = performance.now() - startedAt;
    const deliveredWhileMeasuring = await sink.received();

    const measured = slots.slice(WARMUP_BLOCKS);
    const pick = (role: Role): number[] => measured.map((s) => durations[s[role]]!);
    const property = compare('known − unknown', pick('known'), pick('unknown'));
    const positive = compare('control (unknown + 1 ms) − unknown', pick('control'), pick('unknown2'));
    // Reported, not asserted: the control pair's unknown request when it comes right after the
    // known/unknown pair, after a known request against after an unknown one (unpaired).
    const after = (role: 'known' | 'unknown'): number[] => measured.filter((s) => s.unknown2 - 1 === s[role]).map((s) => durations[s.unknown2]!);
    const [afterKnown, afterUnknown] = [after('known'), after('unknown')];
    const carryOver = `request after a known − after an unknown (n=${afterKnown.length}/${afterUnknown.length}): median diff ${((median(afterKnown) - median(afterUnknown)) / 1e6).toFixed(4)} ms | p10 diff ${((quantile(afterKnown, 0.1) - quantile(afterUnknown, 0.1)) / 1e6).toFixed(4)} ms (not asserted)`;

    // Every known request really made the worker send a mail.
    const expectedMails = WARMUP_BLOCKS + PAIRS;
    const deadline = Date.now() + 30_000;
    while ((await sink.received()) < expectedMails && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const delivered = await sink.received();

    console.log(
      [
        `forgot-password timing over HTTP on 127.0.0.1, outbox worker running, SMTP${tlsOn ? ' over STARTTLS' : ''}: ${PAIRS} pairs after ${WARMUP_BLOCKS} warm-up blocks, ${emails.length} requests in ${(measuredForMs / 1000).toFixed(1)} s`,
        `  median request ${(median(pick('unknown')) / 1e6).toFixed(3)} ms; ${deliveredWhileMeasuring} of ${expectedMails} mails delivered while measuring, ${delivered} in all`,
        `  ${report(property)}`,
        `  ${report(positive)}`,
        `  ${carryOver}`,
      ].join('\n'),
    );

    expect(delivered).toBe(expectedMails);
    // …and did much of it while the requests were being timed, on the same event loop.
    expect(deliveredWhileMeasuring).toBeGreaterThan(expectedMails / 4);
    // An undetected control means the run could not have seen a 1 ms leak: inconclusive, so it fails.
    expect(positive.wilcoxon.p, `inconclusive: the 1 ms control was not detected (${report(positive)})`).toBeLessThan(0.001);
    expect(positive.medianPairedMs, `the control's measured effect is not about 1 ms (${report(positive)})`).toBeGreaterThan(0.8 * CONTROL_DELAY_MS);
    expect(positive.medianPairedMs, `the control's measured effect is not about 1 ms (${report(positive)})`).toBeLessThan(1.5 * CONTROL_DELAY_MS);

    expect(Math.abs(property.medianPairedMs), report(property)).toBeLessThan(LIMIT_MS);
    expect(Math.abs(property.p10Ms), report(property)).toBeLessThan(LIMIT_MS);
  });
});
