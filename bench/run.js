// `npm run bench`: load scenarios against the built server on 127.0.0.1 (see bench/README.md).
// Every server runs as a child process; the load generators run here. The last line of stdout
// is one JSON object: every figure, every ratio, the load averages and which targets were met.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ask, forkReady, installCleanup, interrupted, stopAll, stopChild, tempDir } from './lib/children.js';
import { cannon, round, warmThenMeasure } from './lib/load.js';
import { ROOT, cloneDataDir, ensureBuilt, makeTemplate, pendingOf, serverOutboxCounts, startGatehouse, unknownEmail, userEmail } from './lib/gatehouse.js';
import { ARGON2ID, argon2HashRate, argon2Rates, scryptRates } from './lib/hash-rate.js';
import { memoryMb, resetPeak, sampleRss } from './lib/memory.js';
import { signInSaturated } from './lib/saturation.js';
import { collectResetTokens, completeResets } from './lib/reset.js';
import { deliverViaWorker, sendDirect } from './lib/email.js';
import * as postgres from './lib/postgres.js';
import { knownVsUnknown, timingNote } from './lib/timing.js';
import { summarize } from './lib/summary.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const num = (name, fallback) => (process.env[name] ? Number(process.env[name]) : fallback);

/** Scenario ids, in the order they run (BENCH_ONLY takes a comma-separated list of them). */
const SCENARIOS = [
  'baseline',
  'argon2Raw',
  'forgotPassword',
  'signIn',
  'signInSaturated',
  'resetCompletion',
  'emailDelivery',
  'emailDeliveryPool10',
  'pgForgotPassword',
  'pgSignIn',
  'timingControl',
  'timingGatehouse',
  'betterAuth',
  'betterAuthArgon2',
  'timingBetterAuth',
  'scryptRaw',
];

/** The scenarios that run Gatehouse on a copy of the SQLite template. */
const ON_SQLITE_TEMPLATE = ['forgotPassword', 'signIn', 'signInSaturated', 'resetCompletion', 'emailDelivery', 'emailDeliveryPool10', 'timingGatehouse'];

const CONFIG = {
  durationSeconds: num('BENCH_DURATION', 8),
  warmupSeconds: num('BENCH_WARMUP', 2),
  connections: num('BENCH_CONNECTIONS', 50),
  // Sign-in is hash-bound (tens of ms to hundreds for scrypt): with 50 connections a request
  // would wait seconds and an 8 s run would count mostly edge effects. 10 keep the threads
  // that hash busy on either side.
  signInConnections: num('BENCH_SIGNIN_CONNECTIONS', 10),
  // Far more than the server hashes at once (one per core) plus the queue it allows behind them.
  saturatedConnections: num('BENCH_SATURATED_CONNECTIONS', 64),
  healthzPerSecond: num('BENCH_HEALTHZ_RATE', 40),
  // Known accounts: sign-in goes round-robin over them, half the forgot-password requests name
  // one of them, and each gives one reset token to the reset-completion scenario.
  users: num('BENCH_USERS', 200),
  resetClients: num('BENCH_RESET_CLIENTS', 10),
  resetEmails: num('BENCH_EMAILS', 500),
  drainWaitSeconds: num('BENCH_DRAIN_WAIT', 10),
  hashSeconds: num('BENCH_HASH_SECONDS', 3),
  idleSeconds: num('BENCH_IDLE_SECONDS', 3),
  timingRequests: num('BENCH_TIMING_REQUESTS', 800),
  timingWarmup: num('BENCH_TIMING_WARMUP', 200),
  betterAuthUsers: num('BENCH_BA_USERS', 20),
  skipBetterAuth: process.env.BENCH_SKIP_BETTER_AUTH === '1',
  skipPostgres: process.env.BENCH_SKIP_POSTGRES === '1',
  only: process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',').map((s) => s.trim()) : undefined,
};
const selected = (id) => CONFIG.only === undefined || CONFIG.only.includes(id);

const startedAtMs = Date.now();
const loadAtStart = os.loadavg();
const log = (msg) => process.stdout.write(`[${((Date.now() - startedAtMs) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Scenario results keyed by id, and the rows of the final table. */
const results = {};
const rows = [];
const warnings = [];

async function scenario(id, title, fn) {
  if (!selected(id) || interrupted()) return;
  const loadAverage = round(os.loadavg()[0], 2);
  log(`${id}: ${title} (load average ${loadAverage})`);
  try {
    results[id] = { title, loadAverageAtStart: loadAverage, ...(await fn()) };
  } catch (err) {
    results[id] = { title, loadAverageAtStart: loadAverage, error: err instanceof Error ? err.message : String(err) };
    rows.push({ scenario: title, rate: '—', p50: '—', p99: '—', cpu: '—', notes: `FAILED: ${firstLine(results[id].error)}` });
    log(`${id} failed: ${results[id].error}`);
  }
}

/** A scenario that cannot run here: said loudly in the log, the table and the JSON, not an error. */
function skipped(scenarioName, reason) {
  warnings.push(`${scenarioName} SKIPPED: ${reason}`);
  log(`SKIPPED: ${reason}`);
  rows.push({ scenario: scenarioName, rate: '—', p50: '—', p99: '—', cpu: '—', notes: `skipped: ${reason}` });
  return { skipped: reason };
}

const firstLine = (s) => String(s).split('\n')[0].slice(0, 160);
const fmtRate = (n, unit = 'req/s') => (n === undefined ? '—' : `${n.toLocaleString('en-US', { maximumFractionDigits: 1 })} ${unit}`);
const fmtMs = (n) => (n === undefined ? '—' : `${n} ms`);
const fmtCpu = (us) => (us === undefined ? '—' : `${us.toLocaleString('en-US')} µs`);
const minus = (a, b) => (a === undefined || b === undefined ? undefined : a - b);
const ratioOf = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : round(a / b, 2));

/** A table row for an HTTP load result. */
function loadRow(scenarioName, m, expected, notes) {
  return { scenario: scenarioName, rate: fmtRate(okPerSec(m, expected)), p50: fmtMs(m.p50Ms), p99: fmtMs(m.p99Ms), cpu: fmtCpu(m.serverCpuUsPerRequest), notes: notes + statusNote(m, expected) };
}

/** Only the answers the scenario expects count as throughput (a fast 503 is not a served request). */
function okPerSec(m, expected) {
  return round((m.statusCodes[String(expected)] ?? 0) / m.durationSeconds);
}

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

/** A Gatehouse server on a fresh copy of a template; stopped (and its database dropped) after fn. */
async function withGatehouse(template, name, fn, env = {}) {
  const dir = cloneDataDir(template.dir, name);
  const db = template.pgName === undefined ? undefined : await postgres.createDatabase(template.pgName);
  const server = await startGatehouse(dir, { ...env, ...(db ? { DATABASE_URL: db.url } : {}) });
  try {
    return await fn(server);
  } finally {
    await server.stop();
    if (db) await postgres.dropDatabase(db.name);
  }
}

/** The figures other scenarios compare with, once measured. */
const ref = {};

async function main() {
  installCleanup();
  const load = loadAtStart;
  log(`bench: ${os.cpus().length} cores, Node ${process.version}, load average ${load.map((l) => l.toFixed(2)).join(' ')}`);
  if (load[0] > 0.7) {
    warnings.push(`the 1-minute load average was ${load[0].toFixed(2)} before the run: other work shares these ${os.cpus().length} cores and lowers every figure`);
    log(`warning: ${warnings.at(-1)}`);
  }
  const unknownIds = (CONFIG.only ?? []).filter((id) => !SCENARIOS.includes(id));
  if (unknownIds.length > 0) throw new Error(`BENCH_ONLY names unknown scenarios: ${unknownIds.join(', ')} (known: ${SCENARIOS.join(', ')})`);

  const build = await ensureBuilt(log);
  log(`build: ${build.note.split('\n')[0]}`);
  if (build.stale) warnings.push(build.note);

  const password = `Bq${randomBytes(12).toString('base64url')}7`;
  const sink = await forkReady(path.join(HERE, 'servers', 'smtp-sink.js'));
  const ctx = {
    password,
    sinkPort: sink.info.port,
    sinkAsk: (msg) => ask(sink.child, msg),
    sinkStats: () => ask(sink.child, { cmd: 'stats' }),
    sinkReset: () => ask(sink.child, { cmd: 'reset' }),
    // Half known, half unknown addresses, interleaved.
    forgotBodies: Array.from({ length: CONFIG.users }, (_, i) => [{ email: userEmail(i) }, { email: unknownEmail(i) }]).flat(),
    signInBodies: Array.from({ length: CONFIG.users }, (_, i) => ({ login: userEmail(i), password })),
    template: undefined,
  };
  log(`SMTP sink on 127.0.0.1:${ctx.sinkPort}`);

  if (ON_SQLITE_TEMPLATE.some(selected)) {
    log(`preparing data: admin, ${CONFIG.users} users, sender secret, email settings`);
    ctx.template = await makeTemplate({ users: CONFIG.users, password, sinkPort: ctx.sinkPort, log });
  }

  await scenario('baseline', 'baseline: bare Fastify POST → 202', () => baselineScenario(ctx));
  await scenario('argon2Raw', '@node-rs/argon2 verify and hash in-process (m=19456 KiB, t=2, p=1)', () => argon2RawScenario(ctx));
  await scenario('forgotPassword', 'Gatehouse POST /api/auth/forgot-password (50% known addresses), memory', () =>
    withGatehouse(ctx.template, 'forgot', (server) => forgotPasswordScenario(ctx, server, { label: 'Gatehouse forgot-password', memory: true })),
  );
  await scenario('signIn', 'Gatehouse POST /api/auth/login (valid password, argon2id)', () =>
    withGatehouse(ctx.template, 'signin', (server) => signInScenario(ctx, server, 'Gatehouse sign-in (argon2id)')),
  );
  await scenario('signInSaturated', `Gatehouse sign-in saturated (${CONFIG.saturatedConnections} connections) and /healthz beside it`, () =>
    withGatehouse(ctx.template, 'saturated', (server) => signInSaturatedScenario(ctx, server)),
  );
  await scenario('resetCompletion', `Gatehouse reset completion (verify + reset), ${CONFIG.resetClients} clients`, () =>
    withGatehouse(ctx.template, 'reset', (server) => resetCompletionScenario(ctx, server)),
  );
  const pool = mailPoolSupport();
  await scenario('emailDelivery', `email delivery: ${CONFIG.resetEmails} reset emails through the outbox worker, default pool (${pool.defaultSize})`, () =>
    emailDeliveryScenario(ctx, { env: {}, maxConnections: pool.defaultSize, label: `pool ${pool.defaultSize}`, pool }),
  );
  await scenario('emailDeliveryPool10', `email delivery with MAIL_POOL_SIZE=10${pool.known ? '' : ' (the built server does not read it: pool stays ' + pool.defaultSize + ')'}`, () =>
    emailDeliveryScenario(ctx, { env: { MAIL_POOL_SIZE: '10' }, maxConnections: 10, label: 'MAIL_POOL_SIZE=10', pool }),
  );

  if (selected('pgForgotPassword') || selected('pgSignIn')) ctx.pgTemplate = await postgresTemplate(ctx);
  await scenario('pgForgotPassword', 'Gatehouse forgot-password on PostgreSQL', () =>
    ctx.pgTemplate.skipped
      ? skipped('Gatehouse forgot-password (PostgreSQL)', ctx.pgTemplate.skipped)
      : withGatehouse(ctx.pgTemplate, 'pg-forgot', (server) => forgotPasswordScenario(ctx, server, { label: 'Gatehouse forgot-password (PostgreSQL)', memory: false })),
  );
  await scenario('pgSignIn', 'Gatehouse sign-in on PostgreSQL', () =>
    ctx.pgTemplate.skipped
      ? skipped('Gatehouse sign-in (PostgreSQL)', ctx.pgTemplate.skipped)
      : withGatehouse(ctx.pgTemplate, 'pg-signin', (server) => signInScenario(ctx, server, 'Gatehouse sign-in (PostgreSQL)')),
  );

  await scenario('timingControl', 'timing control: baseline route 1 ms slower for known addresses', () => timingControlScenario(ctx));
  await scenario('timingGatehouse', 'timing: Gatehouse forgot-password, known vs unknown, one at a time', () =>
    withGatehouse(ctx.template, 'timing', (server) => timingGatehouseScenario(ctx, server)),
  );

  await betterAuthScenarios(ctx);

  await stopChild(sink.child);
  if (ctx.pgTemplate?.pgName) await postgres.dropDatabase(ctx.pgTemplate.pgName);
}

// 1. Baseline
async function baselineScenario(ctx) {
  const { child, info } = await forkReady(path.join(HERE, 'servers', 'baseline.js'));
  try {
    const url = `http://127.0.0.1:${info.port}`;
    const m = await warmThenMeasure({ url, path: '/api/auth/forgot-password', bodies: ctx.forgotBodies, headers: { origin: url }, serverPid: child.pid, connections: CONFIG.connections, durationSeconds: CONFIG.durationSeconds }, CONFIG.warmupSeconds);
    ref.baselineRps = okPerSec(m, 202);
    ref.baselineCpu = m.serverCpuUsPerRequest;
    rows.push(loadRow('baseline: bare Fastify POST', m, 202, `separate process, same JSON bodies; load generator used ${m.loadGeneratorCores} cores`));
    return { load: m, okPerSecond: ref.baselineRps };
  } finally {
    await stopChild(child);
  }
}

// 2. The raw hash rates, with nothing else running: the ceiling for sign-in and reset.
async function argon2RawScenario(ctx) {
  // The server runs one hash per core at once (src/accounts/passwords.ts); 4 is libuv's pool.
  const inServer = os.availableParallelism();
  const rates = await argon2Rates(ctx.password, { seconds: CONFIG.hashSeconds, concurrencies: [...new Set([1, 2, inServer, 4])] });
  const hash = await argon2HashRate(ctx.password, { seconds: CONFIG.hashSeconds, concurrency: inServer });
  const best = Math.max(rates[1].perSecond, rates[2].perSecond);
  Object.assign(ref, { argon2Verify: best, argon2Hash: hash.perSecond, argon2CpuInServer: rates[inServer].cpuUsEach, inServer });
  rows.push({
    scenario: 'raw argon2id verify',
    rate: fmtRate(best, '/s'),
    p50: fmtMs(rates[1].msEach),
    p99: '—',
    cpu: fmtCpu(Math.min(rates[1].cpuUsEach, rates[2].cpuUsEach)),
    notes:
      `1 at a time: ${rates[1].perSecond}/s (${rates[1].msEach} ms each); 2: ${rates[2].perSecond}/s; 4: ${rates[4].perSecond}/s; ` +
      `${inServer} (as in the server): ${fmtCpu(rates[inServer].cpuUsEach)} CPU each; hash(), ${inServer} at once: ${hash.perSecond}/s; p50 = time of one verify`,
  });
  return { params: ARGON2ID, rates, hash, bestVerifyPerSecond: best };
}

// 3. forgot-password (SQLite or PostgreSQL), with the server's memory on SQLite
async function forgotPasswordScenario(ctx, server, { label, memory: measureMemory }) {
  const pid = server.child.pid;
  const req = { url: server.url, path: '/api/auth/forgot-password', bodies: ctx.forgotBodies, headers: { origin: server.origin }, serverPid: pid, connections: CONFIG.connections, durationSeconds: CONFIG.durationSeconds };
  const pending = async () => pendingOf(await serverOutboxCounts(server));
  let memory;
  let sampler;
  if (measureMemory) {
    await sleep(CONFIG.idleSeconds * 1000);
    memory = { idleAfterSeconds: CONFIG.idleSeconds, idleRssMb: memoryMb(pid)?.rssMb, hwmResetBeforeRun: resetPeak(pid) };
    sampler = sampleRss(pid, 100);
  }
  await ctx.sinkReset();
  if (CONFIG.warmupSeconds > 0) {
    await cannon({ ...req, durationSeconds: CONFIG.warmupSeconds });
    // The measured run starts with an empty outbox: the warm-up's emails are sent first.
    await waitFor(async () => (await pending()) === 0, CONFIG.drainWaitSeconds * 1000, 250);
  }
  const before = { sink: (await ctx.sinkStats()).count };
  const m = await cannon(req);
  assertAlive(server);
  const after = { sink: (await ctx.sinkStats()).count, db: await serverOutboxCounts(server) };
  const sentDuringRun = after.sink - before.sink;
  // Every other accepted request names a known account (a 503 enqueues nothing).
  const knownDuringRun = Math.round((m.statusCodes['202'] ?? 0) / 2);
  const backlogAtEnd = pendingOf(after.db);
  // How long the worker needs to catch up once the load stops (bounded).
  const drainStart = Date.now();
  const drained = await waitFor(async () => (await pending()) === 0, CONFIG.drainWaitSeconds * 1000, 250);
  const drainSeconds = round((Date.now() - drainStart) / 1000);
  const final = { sink: (await ctx.sinkStats()).count, db: await serverOutboxCounts(server) };
  if (sampler) Object.assign(memory, sampler.stop(), { peakRssMb: memoryMb(pid)?.hwmMb });
  const rps = okPerSec(m, 202);
  const mail = {
    knownRequestsDuringRun: knownDuringRun,
    emailsSentDuringRun: sentDuringRun,
    emailsPerSecondDuringRun: round(sentDuringRun / m.durationSeconds),
    backlogAtEnd,
    drained,
    drainSeconds,
    emailsSentWhileDraining: final.sink - after.sink,
    backlogAfterDrainWait: pendingOf(final.db),
    outboxAtEnd: final.db.outbox,
    audit: final.db.audit,
  };
  const drainNote = drained ? `drained in ${drainSeconds} s` : `${mail.backlogAfterDrainWait} still queued after ${drainSeconds} s`;
  const ratio = ratioOf(rps, ref.baselineRps);
  const cpuRatio = ref.baselineCpu && m.serverCpuUsPerRequest ? round(m.serverCpuUsPerRequest / ref.baselineCpu, 1) : undefined;
  const vsSqlite = server.databaseUrl && ref.forgotRps ? `; ${ratioOf(rps, ref.forgotRps)}× SQLite` : '';
  if (!server.databaseUrl) ref.forgotRps = rps;
  const memoryNote = memory ? `; RSS idle ${memory.idleRssMb} MB, peak ${memory.peakRssMb ?? memory.sampledPeakMb} MB` : '';
  rows.push(
    loadRow(
      label,
      m,
      202,
      `${ratio ?? '?'}× baseline req/s, ${cpuRatio ?? '?'}× its CPU/req; main thread ${fmtCpu(m.mainThreadCpuUsPerRequest)}/req (target ≤ 250 µs), ` +
        `other threads ${fmtCpu(minus(m.serverCpuUsPerRequest, m.mainThreadCpuUsPerRequest))}${vsSqlite}; ` +
        `worker sent ${sentDuringRun} of ~${knownDuringRun} known-address emails during the run (${mail.emailsPerSecondDuringRun}/s), backlog ${backlogAtEnd}, ${drainNote}${memoryNote}`,
    ),
  );
  return { load: m, okPerSecond: rps, ratioToBaseline: ratio, cpuPerRequestToBaseline: cpuRatio, mainThreadCpuUsPerRequest: m.mainThreadCpuUsPerRequest, mail, memory, serverLog: serverWarnings(server.logs()) };
}

// 4. sign-in at 10 connections (SQLite or PostgreSQL), compared with the raw verify rate
async function signInScenario(ctx, server, label) {
  const m = await warmThenMeasure(
    { url: server.url, path: '/api/auth/login', bodies: ctx.signInBodies, headers: { origin: server.origin }, serverPid: server.child.pid, connections: CONFIG.signInConnections, durationSeconds: CONFIG.durationSeconds },
    CONFIG.warmupSeconds,
  );
  assertAlive(server);
  const rps = okPerSec(m, 200);
  const ratio = ratioOf(rps, ref.argon2Verify);
  // CPU is the steadier comparison when other work shares the machine.
  const otherUs = m.serverCpuUsPerRequest === undefined || ref.argon2CpuInServer === undefined ? undefined : m.serverCpuUsPerRequest - ref.argon2CpuInServer;
  const vsSqlite = server.databaseUrl && ref.signInRps ? `; ${ratioOf(rps, ref.signInRps)}× SQLite` : '';
  if (!server.databaseUrl) ref.signInRps = rps;
  rows.push(
    loadRow(
      label,
      m,
      200,
      `${ratio ?? '?'}× the raw argon2id verify rate (${ref.argon2Verify ?? '?'}/s)${vsSqlite}` +
        (otherUs === undefined ? '' : `; CPU/req = one verify as the server runs them, ${ref.inServer} at once (${fmtCpu(ref.argon2CpuInServer)}), + ${fmtCpu(otherUs)}`) +
        `; ${CONFIG.users} accounts round-robin, ${CONFIG.signInConnections} connections`,
    ),
  );
  return { load: m, okPerSecond: rps, ratioToRawHash: ratio, cpuUsBesideTheHash: otherUs, accounts: CONFIG.users, serverLog: serverWarnings(server.logs()) };
}

// 5. sign-in saturated, /healthz beside it
async function signInSaturatedScenario(ctx, server) {
  const s = await signInSaturated({
    url: server.url,
    origin: server.origin,
    bodies: ctx.signInBodies,
    connections: CONFIG.saturatedConnections,
    durationSeconds: CONFIG.durationSeconds,
    warmupSeconds: CONFIG.warmupSeconds,
    healthzPerSecond: CONFIG.healthzPerSecond,
    serverPid: server.child.pid,
  });
  assertAlive(server);
  const h = s.healthz;
  const other = Object.entries(s.statusCodes).filter(([code]) => code !== '200' && code !== '503');
  rows.push({
    scenario: `Gatehouse sign-in, ${s.connections} connections`,
    rate: fmtRate(s.okPerSecond),
    p50: fmtMs(s.okP50Ms),
    p99: fmtMs(s.okP99Ms),
    cpu: fmtCpu(s.serverCpuUsPerSignIn),
    notes:
      `200s only (p50/p99 of the 200s, CPU per 200); ${ratioOf(s.okPerSecond, ref.argon2Verify) ?? '?'}× raw verify; ` +
      `503: ${s.shedWithRetryAfter} with Retry-After ${JSON.stringify(s.retryAfterSeconds)}, ${s.shedWithoutRetryAfter} without (${JSON.stringify(s.shedReasons)}), clients wait the Retry-After (≤ 2 s); ` +
      `/healthz at ${h.perSecond}/s: p50 ${h.p50Ms} ms, p99 ${h.p99Ms} ms, max ${h.maxMs} ms (target p99 < 20 ms)` +
      (other.length > 0 || s.socketErrors > 0 ? ` | ALSO: ${other.map(([c, n]) => `${n}× ${c}`).join(', ')} ${s.socketErrors} socket errors` : ''),
  });
  return { ...s, ratioToRawHash: ratioOf(s.okPerSecond, ref.argon2Verify), serverLog: serverWarnings(server.logs()) };
}

// 6. reset completion: verify + reset with real tokens
async function resetCompletionScenario(ctx, server) {
  const emails = Array.from({ length: CONFIG.users }, (_, i) => userEmail(i));
  const tokens = await collectResetTokens({ server, emails, sinkAsk: ctx.sinkAsk });
  if (tokens.length === 0) throw new Error(`the sink found no reset token in ${emails.length} reset emails`);
  const r = await completeResets({ url: server.url, origin: server.origin, tokens, clients: CONFIG.resetClients, serverPid: server.child.pid });
  assertAlive(server);
  const ratio = ratioOf(r.completionsPerSecond, ref.argon2Hash);
  const bad = Object.entries(r.unexpected).map(([k, n]) => `${n}× ${k}`);
  rows.push({
    scenario: 'Gatehouse reset completion',
    rate: fmtRate(r.completionsPerSecond, 'resets/s'),
    p50: fmtMs(r.p50Ms),
    p99: fmtMs(r.p99Ms),
    cpu: fmtCpu(r.serverCpuUsPerCompletion),
    notes:
      `verify (200) + reset (204) per token, ${r.completions} of ${tokens.length} tokens from ${emails.length} emails, ${r.clients} clients, ${r.seconds} s; ` +
      `${ratio ?? '?'}× the raw argon2id hash rate (${ref.argon2Hash ?? '?'}/s: a reset hashes once); p50 verify ${r.verifyP50Ms} ms, reset ${r.resetP50Ms} ms; ` +
      `main thread ${fmtCpu(r.mainThreadCpuUsPerCompletion)}/completion` +
      (bad.length > 0 ? ` | NOT COUNTED: ${bad.join(', ')}` : ''),
  });
  return { ...r, ratioToRawHash: ratio, serverLog: serverWarnings(server.logs()) };
}

/** Whether the built server reads MAIL_POOL_SIZE, and its default pool size (dist/config.js). */
function mailPoolSupport() {
  try {
    const text = fs.readFileSync(path.join(ROOT, 'dist', 'config.js'), 'utf8');
    const defaultSize = Number(text.match(/DEFAULT_MAIL_POOL_SIZE\s*=\s*(\d+)/)?.[1] ?? 3);
    return { known: text.includes("'MAIL_POOL_SIZE'"), defaultSize };
  } catch {
    return { known: false, defaultSize: 3 };
  }
}

// 7. email delivery through the worker vs straight to the sink, same pool
async function emailDeliveryScenario(ctx, { env, maxConnections, label, pool }) {
  const common = { sinkStats: ctx.sinkStats, sinkReset: ctx.sinkReset, emails: CONFIG.resetEmails, users: CONFIG.users };
  const viaWorker = await deliverViaWorker({ ...common, templateDir: ctx.template.dir, env, assertAlive });
  const direct = await sendDirect({ ...common, sinkPort: ctx.sinkPort, maxConnections });
  const ratio = ratioOf(viaWorker.emailsPerSecond, direct.emailsPerSecond);
  const unread = env.MAIL_POOL_SIZE !== undefined && !pool.known ? ` (the built server does not read MAIL_POOL_SIZE yet: its pool is ${pool.defaultSize})` : '';
  rows.push({
    scenario: `Gatehouse email delivery, ${label}`,
    rate: fmtRate(viaWorker.emailsPerSecond, 'emails/s'),
    p50: '—',
    p99: '—',
    cpu: fmtCpu(viaWorker.serverCpuUsPerEmail),
    notes:
      `${viaWorker.received}/${viaWorker.accepted} at the sink ${viaWorker.secondsToLastEmail} s after the first request ` +
      `(the requests took ${viaWorker.enqueueSeconds} s); ${ratio}× direct with ${maxConnections} connections; ` +
      `CPU/email: main thread ${fmtCpu(viaWorker.mainThreadCpuUsPerEmail)}, other threads (the outbox thread) ${fmtCpu(minus(viaWorker.serverCpuUsPerEmail, viaWorker.mainThreadCpuUsPerEmail))}; ` +
      `SMTP connections at once: ${viaWorker.smtpConnectionsAtOnce} (${viaWorker.smtpConnectionsOpened} opened)${unread}` +
      (viaWorker.complete ? '' : ` — INCOMPLETE after 60 s, outbox ${JSON.stringify(viaWorker.outbox)}`) +
      (viaWorker.accepted < CONFIG.resetEmails ? ` | ${CONFIG.resetEmails - viaWorker.accepted} requests not accepted: ${JSON.stringify(viaWorker.statusCodes)}` : ''),
  });
  rows.push({
    scenario: `direct nodemailer → sink, ${maxConnections} conn.`,
    rate: fmtRate(direct.emailsPerSecond, 'emails/s'),
    p50: '—',
    p99: '—',
    cpu: fmtCpu(direct.clientCpuUsPerEmail),
    notes: `pooled, ${maxConnections} connections × 100 messages, same message shape, all handed over at once; CPU = the client's per email`,
  });
  return { viaWorker, direct, ratioToDirect: ratio, mailPoolSizeKnownToServer: pool.known, defaultPoolSize: pool.defaultSize };
}

/** The PostgreSQL template (made once), or why there is none. */
async function postgresTemplate(ctx) {
  if (CONFIG.skipPostgres) return { skipped: 'BENCH_SKIP_POSTGRES=1' };
  const p = await postgres.probe();
  if (!p.ok) return { skipped: p.reason };
  const db = await postgres.createDatabase();
  log(`PostgreSQL ${p.version}: preparing the template database ${db.name} (admin, ${CONFIG.users} users over the API)`);
  try {
    const t = await makeTemplate({ users: CONFIG.users, password: ctx.password, sinkPort: ctx.sinkPort, log, env: { DATABASE_URL: db.url } });
    return { ...t, pgName: db.name, version: p.version };
  } catch (err) {
    await postgres.dropDatabase(db.name);
    return { skipped: `the PostgreSQL template could not be made: ${firstLine(err instanceof Error ? err.message : err)}` };
  }
}

// 8. timing: known vs unknown addresses
const timingAddresses = (n) => ({
  known: Array.from({ length: n }, (_, i) => userEmail(i)),
  unknown: Array.from({ length: n }, (_, i) => `timing-nobody-${String(i).padStart(4, '0')}@example.com`),
});

function timingRow(label, t, extra) {
  return { scenario: label, rate: '—', p50: fmtMs(t.known.medianMs), p99: '—', cpu: '—', notes: `${timingNote(t)}; ${extra}` };
}

async function timingControlScenario() {
  const { child, info } = await forkReady(path.join(HERE, 'servers', 'baseline.js'));
  try {
    const url = `http://127.0.0.1:${info.port}`;
    const t = await knownVsUnknown({ url, path: '/control/forgot', ...timingAddresses(CONFIG.users), headers: { origin: url }, perSide: CONFIG.timingRequests, warmup: CONFIG.timingWarmup, expected: 202 });
    ref.timingControl = t;
    const detected = t.medianDiffMs >= 0.5;
    rows.push(timingRow('timing control (+1 ms if known)', t, detected ? 'the 1 ms is DETECTED (median diff ≥ 0.5 ms)' : 'NOT DETECTED: this measurement cannot see 1 ms here'));
    return { ...t, detected };
  } finally {
    await stopChild(child);
  }
}

async function timingGatehouseScenario(ctx, server) {
  const t = await knownVsUnknown({ url: server.url, path: '/api/auth/forgot-password', ...timingAddresses(CONFIG.users), headers: { origin: server.origin }, perSide: CONFIG.timingRequests, warmup: CONFIG.timingWarmup, expected: 202 });
  assertAlive(server);
  const indistinguishable = Math.abs(t.medianDiffMs) < 0.1 && Math.abs(t.p10DiffMs) < 0.1;
  const control = ref.timingControl ? `; the control's median diff: ${ref.timingControl.medianDiffMs} ms` : '';
  rows.push(timingRow('timing Gatehouse forgot-password', t, `${indistinguishable ? 'under' : 'NOT under'} 0.1 ms both${control}`));
  return { ...t, indistinguishable };
}

// 9. Better Auth side by side
async function betterAuthScenarios(ctx) {
  const ids = ['betterAuth', 'betterAuthArgon2', 'timingBetterAuth', 'scryptRaw'];
  if (!ids.some(selected)) return;
  const baVersion = readVersion('better-auth');
  if (CONFIG.skipBetterAuth || baVersion === undefined) {
    const reason = CONFIG.skipBetterAuth ? 'BENCH_SKIP_BETTER_AUTH=1' : 'better-auth is not installed (npm install)';
    results.betterAuth = { skipped: reason };
    rows.push({ scenario: 'Better Auth', rate: '—', p50: '—', p99: '—', cpu: '—', notes: `skipped: ${reason}` });
    return;
  }
  const startBetterAuth = (hash) =>
    forkReady(path.join(HERE, 'servers', 'better-auth.js'), {
      env: { BA_DATA_DIR: tempDir(`better-auth-${hash}`), BA_PASSWORD: ctx.password, BA_USERS: String(CONFIG.betterAuthUsers), BA_HASH: hash, BETTER_AUTH_TELEMETRY: '0' },
      timeoutMs: 120_000,
    });
  const signInBodies = Array.from({ length: CONFIG.betterAuthUsers }, (_, i) => ({ email: userEmail(i), password: ctx.password }));
  const signInLoad = { connections: CONFIG.signInConnections, durationSeconds: CONFIG.durationSeconds };

  await scenario('betterAuth', `Better Auth ${baVersion} (scrypt default), SQLite via better-sqlite3`, async () => {
    const { child, info } = await startBetterAuth('scrypt');
    try {
      const url = `http://127.0.0.1:${info.port}`;
      const baForgot = Array.from({ length: CONFIG.betterAuthUsers }, (_, i) => [{ email: userEmail(i) }, { email: unknownEmail(i) }]).flat();
      const forgot = await warmThenMeasure({ url, path: '/api/auth/request-password-reset', bodies: baForgot, headers: { origin: url }, serverPid: child.pid, connections: CONFIG.connections, durationSeconds: CONFIG.durationSeconds }, CONFIG.warmupSeconds);
      const signInM = await warmThenMeasure({ url, path: '/api/auth/sign-in/email', bodies: signInBodies, headers: { origin: url }, serverPid: child.pid, ...signInLoad }, CONFIG.warmupSeconds);
      const baRps = okPerSec(forgot, 200);
      const gatehouseTimes = ratioOf(ref.forgotRps, baRps);
      rows.push(
        loadRow(
          'Better Auth request-password-reset',
          forgot,
          200,
          `${ratioOf(baRps, ref.baselineRps) ?? '?'}× baseline; Gatehouse ${gatehouseTimes ?? '?'}× this (target ≥ 10×); lookup + token row on the request path, sendResetPassword is a no-op (sends no email)`,
        ),
      );
      rows.push(loadRow('Better Auth sign-in (scrypt)', signInM, 200, `its default hash, scrypt N=16384 r=16 p=1 (node:crypto): see the raw rate below`));
      return { version: baVersion, hash: 'scrypt N=16384 r=16 p=1 dkLen=64 (node:crypto, libuv pool)', forgotPassword: forgot, forgotOkPerSecond: baRps, gatehouseForgotToThis: gatehouseTimes, signIn: signInM };
    } finally {
      await stopChild(child);
    }
  });
  await scenario('betterAuthArgon2', `Better Auth ${baVersion} sign-in with Gatehouse's argon2id`, async () => {
    const { child, info } = await startBetterAuth('argon2id');
    try {
      const url = `http://127.0.0.1:${info.port}`;
      const m = await warmThenMeasure({ url, path: '/api/auth/sign-in/email', bodies: signInBodies, headers: { origin: url }, serverPid: child.pid, ...signInLoad }, CONFIG.warmupSeconds);
      rows.push(
        loadRow('Better Auth sign-in (argon2id)', m, 200, `password.hash/verify = @node-rs/argon2 with Gatehouse's parameters; Gatehouse ${ratioOf(ref.signInRps, okPerSec(m, 200)) ?? '?'}× this`),
      );
      return { version: baVersion, hash: 'argon2id m=19456 t=2 p=1 (@node-rs/argon2)', signIn: m };
    } finally {
      await stopChild(child);
    }
  });
  await scenario('timingBetterAuth', `timing: Better Auth ${baVersion} request-password-reset, known vs unknown, one at a time`, async () => {
    const { child, info } = await startBetterAuth('scrypt');
    try {
      const url = `http://127.0.0.1:${info.port}`;
      const t = await knownVsUnknown({ url, path: '/api/auth/request-password-reset', ...timingAddresses(CONFIG.betterAuthUsers), headers: { origin: url }, perSide: CONFIG.timingRequests, warmup: CONFIG.timingWarmup, expected: 200 });
      const indistinguishable = Math.abs(t.medianDiffMs) < 0.1 && Math.abs(t.p10DiffMs) < 0.1;
      rows.push(timingRow('timing Better Auth reset request', t, `${indistinguishable ? 'under' : 'NOT under'} 0.1 ms both; ${CONFIG.betterAuthUsers} known addresses in rotation`));
      return { ...t, indistinguishable };
    } finally {
      await stopChild(child);
    }
  });
  await scenario('scryptRaw', 'Better Auth scrypt verify in-process', async () => {
    const rates = await scryptRates(ctx.password, { seconds: CONFIG.hashSeconds, concurrencies: [1, 2] });
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

function readVersion(pkg) {
  try {
    return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

let reported = false;
/** What stopped the run before its end, if something did (the JSON line says it). */
let fatal;
function report() {
  if (reported || interrupted()) return;
  reported = true;
  const headers = { scenario: 'scenario', rate: 'rate', p50: 'p50', p99: 'p99', cpu: 'server CPU/req', notes: 'notes' };
  const cols = ['scenario', 'rate', 'p50', 'p99', 'cpu'];
  const width = Object.fromEntries(cols.map((k) => [k, Math.max(...[headers, ...rows].map((r) => String(r[k] ?? '—').length))]));
  const line = (r) => cols.map((k) => (k === 'scenario' ? String(r[k]).padEnd(width[k]) : String(r[k] ?? '—').padStart(width[k]))).join('  ') + `  ${r.notes}`;
  const seconds = round((Date.now() - startedAtMs) / 1000);
  process.stdout.write(`\n${line(headers)}\n${'-'.repeat(cols.reduce((a, k) => a + width[k] + 2, 0) + 40)}\n${rows.map(line).join('\n')}\n`);
  for (const warning of warnings) process.stdout.write(`\nwarning: ${warning}\n`);
  const machine = { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg() };
  const summary = { ...(fatal ? { error: fatal } : {}), ...summarize({ results, startedAtMs, seconds, machine, leftOverDatabases: postgres.leftOver() }) };
  const out = {
    startedAt: new Date(startedAtMs).toISOString(),
    seconds,
    machine,
    config: CONFIG,
    versions: Object.fromEntries(['fastify', 'better-auth', '@node-rs/argon2', 'better-sqlite3', 'nodemailer', 'smtp-server', 'autocannon', 'pg'].map((p) => [p, readVersion(p)])),
    warnings,
    summary,
    scenarios: results,
    table: rows,
  };
  const dir = path.join(HERE, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'latest.json'), `${JSON.stringify(out, null, 2)}\n`);
  const missed = Object.entries(summary.targetsMet).filter(([, v]) => v === false).map(([k]) => k);
  process.stdout.write(`\ntargets missed: ${missed.length > 0 ? missed.join(', ') : 'none'}\n`);
  process.stdout.write(`whole run: ${seconds} s; results in bench/results/latest.json; the next line is the summary\n`);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  fatal = firstLine(err instanceof Error ? err.message : String(err));
  process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
} finally {
  await stopAll();
}
report();
process.exit(exitCode);
