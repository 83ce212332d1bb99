// `npm run bench`: load scenarios against the built server on 127.0.0.1 (see bench/README.md).
// Every server runs as a child process; the load generator (autocannon) runs here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import nodemailer from 'nodemailer';
import { ask, forkReady, installCleanup, stopAll, stopChild, tempDir } from './lib/children.js';
import { cannon, processCpuMs, round, warmThenMeasure } from './lib/load.js';
import { ROOT, cloneDataDir, ensureBuilt, makeTemplate, outboxCounts, pendingOf, startGatehouse, unknownEmail, userEmail } from './lib/gatehouse.js';
import { ARGON2ID, argon2Rates, scryptRates } from './lib/hash-rate.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const num = (name, fallback) => (process.env[name] ? Number(process.env[name]) : fallback);

const CONFIG = {
  durationSeconds: num('BENCH_DURATION', 8),
  warmupSeconds: num('BENCH_WARMUP', 2),
  connections: num('BENCH_CONNECTIONS', 50),
  // Sign-in is hash-bound (tens of ms to hundreds for scrypt): with 50 connections a request
  // would wait seconds and an 8 s run would count mostly edge effects. 10 keep the 4 libuv
  // threads that hash busy on either side.
  signInConnections: num('BENCH_SIGNIN_CONNECTIONS', 10),
  // Known accounts: sign-in goes round-robin over them, as real sign-ins would, and half the
  // forgot-password requests name one of them.
  users: num('BENCH_USERS', 200),
  resetEmails: num('BENCH_EMAILS', 500),
  drainWaitSeconds: num('BENCH_DRAIN_WAIT', 10),
  hashSeconds: num('BENCH_HASH_SECONDS', 3),
  betterAuthUsers: num('BENCH_BA_USERS', 20),
  skipBetterAuth: process.env.BENCH_SKIP_BETTER_AUTH === '1',
  /** scenario ids to run (baseline, forgotPassword, signIn, argon2Raw, emailDelivery, betterAuth, betterAuthArgon2, scryptRaw) */
  only: process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((s) => s.trim()) : undefined,
};

const startedAtMs = Date.now();
const log = (msg) => process.stdout.write(`[${((Date.now() - startedAtMs) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Scenario results keyed by id, and the rows of the final table. */
const results = {};
const rows = [];
const warnings = [];

async function scenario(id, title, fn) {
  if (CONFIG.only !== undefined && !CONFIG.only.includes(id)) return;
  const loadAverage = round(os.loadavg()[0], 2);
  log(`${id}: ${title} (load average ${loadAverage})`);
  try {
    results[id] = { title, loadAverageAtStart: loadAverage, ...(await fn()) };
  } catch (err) {
    results[id] = { title, error: err instanceof Error ? err.message : String(err) };
    rows.push({ scenario: title, rate: '—', p50: '—', p99: '—', cpu: '—', notes: `FAILED: ${firstLine(results[id].error)}` });
    log(`${id} failed: ${results[id].error}`);
  }
}

const firstLine = (s) => String(s).split('\n')[0].slice(0, 160);
const fmtRate = (n, unit = 'req/s') => (n === undefined ? '—' : `${n.toLocaleString('en-US', { maximumFractionDigits: 1 })} ${unit}`);
const fmtMs = (n) => (n === undefined ? '—' : `${n} ms`);

/** A table row for an HTTP load result. */
function loadRow(scenarioName, m, expected, notes) {
  return { scenario: scenarioName, rate: fmtRate(okPerSec(m, expected)), p50: fmtMs(m.p50Ms), p99: fmtMs(m.p99Ms), cpu: fmtCpu(m.serverCpuUsPerRequest), notes: notes + statusNote(m, expected) };
}

/** Only the answers the scenario expects count as throughput (a fast 503 is not a served request). */
function okPerSec(m, expected) {
  return round((m.statusCodes[String(expected)] ?? 0) / m.durationSeconds);
}
const fmtCpu = (us) => (us === undefined ? '—' : `${us.toLocaleString('en-US')} µs`);

function statusNote(m, expected) {
  const other = Object.entries(m.statusCodes).filter(([code]) => code !== String(expected));
  const parts = other.map(([code, n]) => `${n}× ${code}`);
  if (m.errors > 0) parts.push(`${m.errors} socket errors`);
  if (m.timeouts > 0) parts.push(`${m.timeouts} timeouts`);
  return parts.length > 0 ? ` | NOT COUNTED: ${parts.join(', ')} (latencies include them)` : '';
}

function serverWarnings(logs, limit = 3) {
  const lines = logs.split('\n').filter((l) => l.trim() !== '');
  return { count: lines.length, sample: lines.slice(0, limit).map((l) => l.slice(0, 300)), tail: lines.slice(-limit).map((l) => l.slice(0, 300)) };
}

/** Fails the scenario loudly when the server died under load rather than reporting its socket errors as figures. */
function assertAlive(server) {
  const how = server.exited();
  if (how !== undefined) throw new Error(`the Gatehouse server exited during the run (${how}); its last output: ${server.logs().trim().split('\n').slice(-3).join(' | ').slice(0, 600)}`);
}

async function waitFor(predicate, timeoutMs, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
}

async function main() {
  installCleanup();
  const load = os.loadavg();
  log(`bench: ${os.cpus().length} cores, Node ${process.version}, load average ${load.map((l) => l.toFixed(2)).join(' ')}`);
  if (load[0] > 0.7) {
    warnings.push(`the 1-minute load average was ${load[0].toFixed(2)} before the run: other work shares these ${os.cpus().length} cores and lowers every figure`);
    log(`warning: ${warnings.at(-1)}`);
  }

  const build = await ensureBuilt(log);
  log(`build: ${build.note.split('\n')[0]}`);
  if (build.stale) warnings.push(build.note);

  const password = `Bq${randomBytes(12).toString('base64url')}7`;
  const sink = await forkReady(path.join(HERE, 'servers', 'smtp-sink.js'));
  const sinkPort = sink.info.port;
  const sinkStats = () => ask(sink.child, { cmd: 'stats' });
  const sinkReset = () => ask(sink.child, { cmd: 'reset' });
  log(`SMTP sink on 127.0.0.1:${sinkPort}`);

  log(`preparing data: admin, ${CONFIG.users} users, sender secret, email settings`);
  const template = await makeTemplate({ users: CONFIG.users, password, sinkPort, log });

  const load50 = { connections: CONFIG.connections, durationSeconds: CONFIG.durationSeconds };
  const signInLoad = { connections: CONFIG.signInConnections, durationSeconds: CONFIG.durationSeconds };
  // Half known, half unknown addresses, interleaved.
  const forgotBodies = Array.from({ length: CONFIG.users }, (_, i) => [{ email: userEmail(i) }, { email: unknownEmail(i) }]).flat();

  // 1. Baseline
  let baselineRps;
  let baselineCpu;
  await scenario('baseline', 'baseline: bare Fastify POST → 202', async () => {
    const { child, info } = await forkReady(path.join(HERE, 'servers', 'baseline.js'));
    try {
      const url = `http://127.0.0.1:${info.port}`;
      const m = await warmThenMeasure({ url, path: '/api/auth/forgot-password', bodies: forgotBodies, headers: { origin: url }, serverPid: child.pid, ...load50 }, CONFIG.warmupSeconds);
      baselineRps = okPerSec(m, 202);
      baselineCpu = m.serverCpuUsPerRequest;
      rows.push(loadRow('baseline: bare Fastify POST', m, 202, `separate process, same JSON bodies; load generator used ${m.loadGeneratorCores} cores`));
      return { load: m };
    } finally {
      await stopChild(child);
    }
  });

  // 2. forgot-password
  await scenario('forgotPassword', 'Gatehouse POST /api/auth/forgot-password (50% known addresses)', async () => {
    const dir = cloneDataDir(template.dir, 'forgot');
    const server = await startGatehouse(dir);
    try {
      await sinkReset();
      const req = { url: server.url, path: '/api/auth/forgot-password', bodies: forgotBodies, headers: { origin: server.origin }, serverPid: server.child.pid, ...load50 };
      if (CONFIG.warmupSeconds > 0) {
        await cannon({ ...req, durationSeconds: CONFIG.warmupSeconds });
        // The measured run starts with an empty outbox: the warm-up's emails are sent first.
        await waitFor(() => pendingOf(outboxCounts(dir)) === 0, CONFIG.drainWaitSeconds * 1000, 250);
      }
      const before = { sink: (await sinkStats()).count, db: outboxCounts(dir) };
      const m = await cannon(req);
      assertAlive(server);
      const after = { sink: (await sinkStats()).count, db: outboxCounts(dir) };
      const sentDuringRun = after.sink - before.sink;
      // Every other accepted request names a known account (a 503 enqueues nothing).
      const knownDuringRun = Math.round((m.statusCodes['202'] ?? 0) / 2);
      const backlogAtEnd = pendingOf(after.db);
      // How long the worker needs to catch up once the load stops (bounded).
      const drainStart = Date.now();
      const drained = await waitFor(() => pendingOf(outboxCounts(dir)) === 0, CONFIG.drainWaitSeconds * 1000, 250);
      const drainSeconds = round((Date.now() - drainStart) / 1000);
      const final = { sink: (await sinkStats()).count, db: outboxCounts(dir) };
      const sentWhileDraining = final.sink - after.sink;
      const ratio = baselineRps ? round(okPerSec(m, 202) / baselineRps, 2) : undefined;
      const mail = {
        knownRequestsDuringRun: knownDuringRun,
        emailsSentDuringRun: sentDuringRun,
        emailsPerSecondDuringRun: round(sentDuringRun / m.durationSeconds),
        backlogAtEnd,
        drained,
        drainSeconds,
        emailsSentWhileDraining: sentWhileDraining,
        emailsPerSecondWhileDraining: round(sentWhileDraining / Math.max(drainSeconds, 0.001)),
        backlogAfterDrainWait: pendingOf(final.db),
        outboxAtEnd: final.db.outbox,
        audit: final.db.audit,
      };
      const drainNote = drained ? `drained in ${drainSeconds} s` : `${mail.backlogAfterDrainWait} still queued after ${drainSeconds} s`;
      const cpuRatio = baselineCpu && m.serverCpuUsPerRequest ? round(m.serverCpuUsPerRequest / baselineCpu, 1) : undefined;
      rows.push(
        loadRow(
          'Gatehouse forgot-password',
          m,
          202,
          `${ratio ?? '?'}× baseline req/s, ${cpuRatio ?? '?'}× its CPU per request; worker sent ${sentDuringRun} of ~${knownDuringRun} ` +
            `known-address emails during the run (${mail.emailsPerSecondDuringRun}/s), backlog ${backlogAtEnd}, ${drainNote}`,
        ),
      );
      return { load: m, ratioToBaseline: ratio, cpuPerRequestToBaseline: cpuRatio, mail, serverLog: serverWarnings(server.logs()) };
    } finally {
      await server.stop();
    }
  });

  // 3. sign-in, then the raw hash rate with nothing else running
  let signInRow;
  await scenario('signIn', 'Gatehouse POST /api/auth/login (valid password, argon2id)', async () => {
    const dir = cloneDataDir(template.dir, 'signin');
    const server = await startGatehouse(dir);
    try {
      const bodies = Array.from({ length: CONFIG.users }, (_, i) => ({ login: userEmail(i), password }));
      const m = await warmThenMeasure({ url: server.url, path: '/api/auth/login', bodies, headers: { origin: server.origin }, serverPid: server.child.pid, ...signInLoad }, CONFIG.warmupSeconds);
      assertAlive(server);
      signInRow = loadRow('Gatehouse sign-in (argon2id)', m, 200, `${CONFIG.users} accounts round-robin, ${CONFIG.signInConnections} connections`);
      rows.push(signInRow);
      return { load: m, accounts: CONFIG.users, serverLog: serverWarnings(server.logs()) };
    } finally {
      await server.stop();
    }
  });
  await scenario('argon2Raw', '@node-rs/argon2 verify in-process (m=19456 KiB, t=2, p=1)', async () => {
    // 4 at a time is what the server does: libuv's default pool has 4 threads, and nothing caps
    // concurrent hashes.
    // The server runs one verify per core at once (src/accounts/passwords.ts).
    const inServer = os.availableParallelism();
    const rates = await argon2Rates(password, { seconds: CONFIG.hashSeconds, concurrencies: [...new Set([1, 2, inServer, 4])] });
    const best = Math.max(rates[1].perSecond, rates[2].perSecond);
    const hashCpuUs = Math.min(rates[1].cpuUsEach, rates[2].cpuUsEach);
    if (results.signIn?.load && signInRow) {
      const m = results.signIn.load;
      const ratio = round(okPerSec(m, 200) / best, 2);
      // CPU is the steadier comparison when other work shares the machine.
      const otherUs = m.serverCpuUsPerRequest === undefined ? undefined : m.serverCpuUsPerRequest - rates[inServer].cpuUsEach;
      signInRow.notes =
        `${ratio}× the raw argon2id verify rate (${best}/s)` +
        (otherUs === undefined ? '' : `; CPU/req = one verify as the server runs them, ${inServer} at once (${fmtCpu(rates[inServer].cpuUsEach)}), + ${fmtCpu(otherUs)}`) +
        `; ${signInRow.notes}`;
      results.signIn.ratioToRawHash = ratio;
      results.signIn.cpuUsBesideTheHash = otherUs;
    }
    rows.push({
      scenario: 'raw argon2id verify',
      rate: fmtRate(best, '/s'),
      p50: fmtMs(rates[1].msEach),
      p99: '—',
      cpu: fmtCpu(hashCpuUs),
      notes:
        `1 at a time: ${rates[1].perSecond}/s (${rates[1].msEach} ms each); 2: ${rates[2].perSecond}/s; ` +
        `4: ${rates[4].perSecond}/s; ${inServer} (as in the server): ${rates[inServer].cpuUsEach === undefined ? '?' : fmtCpu(rates[inServer].cpuUsEach)} CPU each; p50 = time of one verify`,
    });
    return { params: ARGON2ID, rates };
  });

  // 4. email delivery throughput
  await scenario('emailDelivery', `email delivery: ${CONFIG.resetEmails} reset emails through the outbox worker to the SMTP sink`, async () => {
    const dir = cloneDataDir(template.dir, 'mail');
    const server = await startGatehouse(dir);
    let viaWorker;
    try {
      await sinkReset();
      const bodies = Array.from({ length: CONFIG.users }, (_, i) => ({ email: userEmail(i) }));
      const cpu0 = processCpuMs(server.child.pid);
      const t0 = Date.now();
      const m = await cannon({ url: server.url, path: '/api/auth/forgot-password', bodies, headers: { origin: server.origin }, connections: 10, amount: CONFIG.resetEmails });
      const enqueuedAt = Date.now();
      assertAlive(server);
      // Every accepted request is one email (all addresses are known, no limit is on).
      const expected = m.statusCodes['202'] ?? 0;
      const all = await waitFor(async () => (await sinkStats()).count >= expected, 60_000, 25);
      const s = await sinkStats();
      const cpu1 = processCpuMs(server.child.pid);
      const doneAt = s.lastAtMs || Date.now();
      viaWorker = {
        requests: m.total,
        accepted: expected,
        statusCodes: m.statusCodes,
        enqueueSeconds: round((enqueuedAt - t0) / 1000, 2),
        received: s.count,
        complete: all,
        secondsToLastEmail: round((doneAt - t0) / 1000, 2),
        emailsPerSecond: round(s.count / Math.max((doneAt - t0) / 1000, 0.001)),
        emailsPerSecondFirstToLast: round((s.count - 1) / Math.max((s.lastAtMs - s.firstAtMs) / 1000, 0.001)),
        smtpConnections: s.connections,
        // request + worker + SMTP client, per email
        serverCpuUsPerEmail: cpu0 !== undefined && cpu1 !== undefined && s.count > 0 ? Math.round(((cpu1 - cpu0) * 1000) / s.count) : undefined,
        outbox: outboxCounts(dir).outbox,
      };
    } finally {
      await server.stop();
    }

    // The sink's own acceptance rate, for the same client shape as the server's pool.
    await sinkReset();
    const templates = await import(path.join(ROOT, 'dist', 'mail', 'templates.js')).catch(() => undefined);
    const message = (i) =>
      templates?.resetPasswordEmail
        ? templates.resetPasswordEmail({ to: userEmail(i), name: `Bench user ${i}`, link: `http://127.0.0.1/reset-password#token=${randomBytes(32).toString('base64url')}`, validMinutes: 60 })
        : { to: userEmail(i), subject: 'Reset your password', text: 'x'.repeat(600), html: `<p>${'x'.repeat(1500)}</p>` };
    const sendDirect = async (maxConnections) => {
      const transport = nodemailer.createTransport({ host: '127.0.0.1', port: sinkPort, secure: false, ignoreTLS: true, pool: true, maxConnections, maxMessages: 100 });
      const d0 = Date.now();
      const cpuBefore = process.cpuUsage();
      try {
        await Promise.all(Array.from({ length: CONFIG.resetEmails }, (_, i) => transport.sendMail({ from: 'bench-sender@example.com', ...message(i % CONFIG.users) })));
      } finally {
        transport.close();
      }
      const cpu = process.cpuUsage(cpuBefore);
      const seconds = round((Date.now() - d0) / 1000, 2);
      return {
        emails: CONFIG.resetEmails,
        maxConnections,
        seconds,
        emailsPerSecond: round(CONFIG.resetEmails / Math.max(seconds, 0.001)),
        // rendering + nodemailer, in this process: what sending alone costs a client
        clientCpuUsPerEmail: Math.round((cpu.user + cpu.system) / CONFIG.resetEmails),
      };
    };
    const direct = await sendDirect(3);
    // Does the sink take more with more connections? Then the server's pool size is a bound.
    const direct10 = await sendDirect(10);
    const ratio = round(viaWorker.emailsPerSecond / direct.emailsPerSecond, 2);
    rows.push({
      scenario: 'Gatehouse email delivery',
      rate: fmtRate(viaWorker.emailsPerSecond, 'emails/s'),
      p50: '—',
      p99: '—',
      cpu: viaWorker.serverCpuUsPerEmail === undefined ? '—' : fmtCpu(viaWorker.serverCpuUsPerEmail),
      notes:
        `${viaWorker.received}/${viaWorker.accepted} at the sink ${viaWorker.secondsToLastEmail} s after the first request ` +
        `(the requests took ${viaWorker.enqueueSeconds} s); ${ratio}× the sink's direct rate` +
        (viaWorker.complete ? '' : ` — INCOMPLETE after 60 s, outbox ${JSON.stringify(viaWorker.outbox)}`) +
        (viaWorker.accepted < CONFIG.resetEmails ? ` | ${CONFIG.resetEmails - viaWorker.accepted} requests not accepted: ${JSON.stringify(viaWorker.statusCodes)}` : ''),
    });
    rows.push({
      scenario: 'direct nodemailer → sink',
      rate: fmtRate(direct.emailsPerSecond, 'emails/s'),
      p50: '—',
      p99: '—',
      cpu: fmtCpu(direct.clientCpuUsPerEmail),
      notes: `pooled, 3 connections × 100 messages (the server's pool settings), same message shape; with 10 connections: ${direct10.emailsPerSecond} emails/s; CPU = the client's per email`,
    });
    return { viaWorker, direct, direct10Connections: direct10, ratioToDirect: ratio };
  });

  // 5. Better Auth side by side
  const baVersion = readVersion('better-auth');
  if (CONFIG.skipBetterAuth || baVersion === undefined) {
    const reason = CONFIG.skipBetterAuth ? 'BENCH_SKIP_BETTER_AUTH=1' : 'better-auth is not installed (npm install)';
    results.betterAuth = { skipped: reason };
    rows.push({ scenario: 'Better Auth', rate: '—', p50: '—', p99: '—', cpu: '—', notes: `skipped: ${reason}` });
  } else {
    await scenario('betterAuth', `Better Auth ${baVersion} (scrypt default), SQLite via better-sqlite3`, async () => {
      const dir = tempDir('better-auth');
      const { child, info } = await forkReady(path.join(HERE, 'servers', 'better-auth.js'), {
        env: { BA_DATA_DIR: dir, BA_PASSWORD: password, BA_USERS: String(CONFIG.betterAuthUsers), BA_HASH: 'scrypt', BETTER_AUTH_TELEMETRY: '0' },
        timeoutMs: 120_000,
      });
      try {
        const url = `http://127.0.0.1:${info.port}`;
        const baForgot = Array.from({ length: CONFIG.betterAuthUsers }, (_, i) => [{ email: userEmail(i) }, { email: unknownEmail(i) }]).flat();
        const forgot = await warmThenMeasure({ url, path: '/api/auth/request-password-reset', bodies: baForgot, headers: { origin: url }, serverPid: child.pid, ...load50 }, CONFIG.warmupSeconds);
        const signInBodies = Array.from({ length: CONFIG.betterAuthUsers }, (_, i) => ({ email: userEmail(i), password }));
        const signInM = await warmThenMeasure({ url, path: '/api/auth/sign-in/email', bodies: signInBodies, headers: { origin: url }, serverPid: child.pid, ...signInLoad }, CONFIG.warmupSeconds);
        const gh = results.forgotPassword?.load;
        rows.push(
          loadRow(
            'Better Auth request-password-reset',
            forgot,
            200,
            `${baselineRps ? round(okPerSec(forgot, 200) / baselineRps, 2) : '?'}× baseline` +
              (gh ? `; Gatehouse ${round(okPerSec(gh, 202) / okPerSec(forgot, 200), 2)}× this` : '') +
              `; lookup + token row on the request path, sendResetPassword is a no-op (sends no email)`,
          ),
        );
        rows.push(loadRow('Better Auth sign-in (scrypt)', signInM, 200, `its default hash, scrypt N=16384 r=16 p=1 (node:crypto): see the raw rate below`));
        return { version: baVersion, hash: 'scrypt N=16384 r=16 p=1 dkLen=64 (node:crypto, libuv pool)', forgotPassword: forgot, signIn: signInM };
      } finally {
        await stopChild(child);
      }
    });
    await scenario('betterAuthArgon2', `Better Auth ${baVersion} sign-in with Gatehouse's argon2id`, async () => {
      const dir = tempDir('better-auth-argon2');
      const { child, info } = await forkReady(path.join(HERE, 'servers', 'better-auth.js'), {
        env: { BA_DATA_DIR: dir, BA_PASSWORD: password, BA_USERS: String(CONFIG.betterAuthUsers), BA_HASH: 'argon2id', BETTER_AUTH_TELEMETRY: '0' },
        timeoutMs: 120_000,
      });
      try {
        const url = `http://127.0.0.1:${info.port}`;
        const signInBodies = Array.from({ length: CONFIG.betterAuthUsers }, (_, i) => ({ email: userEmail(i), password }));
        const m = await warmThenMeasure({ url, path: '/api/auth/sign-in/email', bodies: signInBodies, headers: { origin: url }, serverPid: child.pid, ...signInLoad }, CONFIG.warmupSeconds);
        const gh = results.signIn?.load;
        rows.push(
          loadRow(
            'Better Auth sign-in (argon2id)',
            m,
            200,
            `password.hash/verify = @node-rs/argon2 with Gatehouse's parameters` + (gh ? `; Gatehouse ${round(okPerSec(gh, 200) / okPerSec(m, 200), 2)}× this` : ''),
          ),
        );
        return { version: baVersion, hash: 'argon2id m=19456 t=2 p=1 (@node-rs/argon2)', signIn: m };
      } finally {
        await stopChild(child);
      }
    });
    await scenario('scryptRaw', 'Better Auth scrypt verify in-process', async () => {
      const rates = await scryptRates(password, { seconds: CONFIG.hashSeconds, concurrencies: [1, 2] });
      rows.push({
        scenario: 'raw scrypt verify (Better Auth)',
        rate: fmtRate(Math.max(rates[1].perSecond, rates[2].perSecond), '/s'),
        p50: fmtMs(rates[1].msEach),
        p99: '—',
        cpu: fmtCpu(Math.min(rates[1].cpuUsEach, rates[2].cpuUsEach)),
        notes: `2 concurrent: ${rates[2].perSecond}/s; 1 at a time: ${rates[1].perSecond}/s (${rates[1].msEach} ms each); p50 = time of one verify`,
      });
      return { rates };
    });
  }

  await stopChild(sink.child);
  report();
}

function readVersion(pkg) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

function report() {
  const headers = { scenario: 'scenario', rate: 'rate', p50: 'p50', p99: 'p99', cpu: 'server CPU/req', notes: 'notes' };
  const cols = ['scenario', 'rate', 'p50', 'p99', 'cpu'];
  const width = Object.fromEntries(cols.map((k) => [k, Math.max(...[headers, ...rows].map((r) => String(r[k] ?? '—').length))]));
  const line = (r) => cols.map((k) => (k === 'scenario' ? String(r[k]).padEnd(width[k]) : String(r[k] ?? '—').padStart(width[k]))).join('  ') + `  ${r.notes}`;
  const seconds = round((Date.now() - startedAtMs) / 1000);
  process.stdout.write(`\n${line(headers)}\n${'-'.repeat(cols.reduce((a, k) => a + width[k] + 2, 0) + 40)}\n${rows.map(line).join('\n')}\n`);
  for (const warning of warnings) process.stdout.write(`\nwarning: ${warning}\n`);
  const out = {
    startedAt: new Date(startedAtMs).toISOString(),
    seconds,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAverageAtStart: os.loadavg() },
    config: CONFIG,
    versions: Object.fromEntries(['fastify', 'better-auth', '@node-rs/argon2', 'better-sqlite3', 'nodemailer', 'smtp-server', 'autocannon'].map((p) => [p, readVersion(p)])),
    warnings,
    scenarios: results,
    table: rows,
  };
  const dir = path.join(HERE, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\nwhole run: ${seconds} s; results in bench/results/latest.json\n`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
} finally {
  await stopAll();
}
process.exit(exitCode);
