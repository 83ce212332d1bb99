// The one-line summary the bench prints last: every figure, every ratio, the load average at the
// start of each scenario, and which targets of issue 12 were met (null: not measured).

const round2 = (n) => Math.round(n * 100) / 100;
const get = (o, ...keys) => keys.reduce((v, k) => (v === undefined || v === null ? undefined : v[k]), o);

/** true/false against the target, null when the figure was not measured. */
const check = (value, test) => (value === undefined || value === null || Number.isNaN(value) ? null : test(value));

/** The figures of one scenario, or what stopped it. */
function figuresOf(result, pick) {
  if (result === undefined) return undefined;
  if (result.error !== undefined) return { error: result.error.slice(0, 300) };
  if (result.skipped !== undefined) return { skipped: result.skipped };
  return pick(result);
}

const loadFigures = (m, expected) => ({
  reqPerSec: m.durationSeconds ? Math.round(((m.statusCodes[String(expected)] ?? 0) / m.durationSeconds) * 10) / 10 : undefined,
  p50Ms: m.p50Ms,
  p99Ms: m.p99Ms,
  cpuUsPerReq: m.serverCpuUsPerRequest,
  mainThreadCpuUsPerReq: m.mainThreadCpuUsPerRequest,
  otherStatuses: Object.fromEntries(Object.entries(m.statusCodes).filter(([code]) => code !== String(expected))),
});

const timingFigures = (t) => ({
  knownMedianMs: t.known.medianMs,
  unknownMedianMs: t.unknown.medianMs,
  knownP10Ms: t.known.p10Ms,
  unknownP10Ms: t.unknown.p10Ms,
  medianDiffMs: t.medianDiffMs,
  p10DiffMs: t.p10DiffMs,
  perSide: t.known.n,
  unexpected: t.unexpected,
});

const emailFigures = (r) => ({
  viaWorkerEmailsPerSec: r.viaWorker.emailsPerSecond,
  directEmailsPerSec: r.direct.emailsPerSecond,
  directMaxConnections: r.direct.maxConnections,
  workerSmtpConnectionsAtOnce: r.viaWorker.smtpConnectionsAtOnce,
  received: r.viaWorker.received,
  accepted: r.viaWorker.accepted,
  serverCpuUsPerEmail: r.viaWorker.serverCpuUsPerEmail,
  mainThreadCpuUsPerEmail: r.viaWorker.mainThreadCpuUsPerEmail,
  directClientCpuUsPerEmail: r.direct.clientCpuUsPerEmail,
  mailPoolSizeKnownToServer: r.mailPoolSizeKnownToServer,
});

export function summarize({ results: r, startedAtMs, seconds, machine, leftOverDatabases }) {
  const figures = {
    baseline: figuresOf(r.baseline, (x) => loadFigures(x.load, 202)),
    argon2Raw: figuresOf(r.argon2Raw, (x) => ({
      verifyPerSec: x.bestVerifyPerSecond,
      verify1PerSec: x.rates[1]?.perSecond,
      verify2PerSec: x.rates[2]?.perSecond,
      verify4PerSec: x.rates[4]?.perSecond,
      verifyMs: x.rates[1]?.msEach,
      hashPerSec: x.hash.perSecond,
    })),
    forgotPassword: figuresOf(r.forgotPassword, (x) => ({
      ...loadFigures(x.load, 202),
      emailsSentDuringRun: x.mail.emailsSentDuringRun,
      backlogAtEnd: x.mail.backlogAtEnd,
      drainSeconds: x.mail.drainSeconds,
      drained: x.mail.drained,
    })),
    memory: figuresOf(r.forgotPassword, (x) => ({ idleRssMb: x.memory?.idleRssMb, peakRssMb: x.memory?.peakRssMb, sampledPeakRssMb: x.memory?.sampledPeakMb, hwmResetBeforeRun: x.memory?.hwmResetBeforeRun })),
    signIn: figuresOf(r.signIn, (x) => ({ ...loadFigures(x.load, 200), cpuUsBesideTheHash: x.cpuUsBesideTheHash })),
    signInSaturated: figuresOf(r.signInSaturated, (x) => ({
      connections: x.connections,
      okPerSec: x.okPerSecond,
      okP50Ms: x.okP50Ms,
      okP99Ms: x.okP99Ms,
      okMaxMs: x.okMaxMs,
      statusCodes: x.statusCodes,
      shedWithRetryAfter: x.shedWithRetryAfter,
      shedWithoutRetryAfter: x.shedWithoutRetryAfter,
      retryAfterSeconds: x.retryAfterSeconds,
      socketErrors: x.socketErrors,
      cpuUsPerSignIn: x.serverCpuUsPerSignIn,
      healthzPerSec: x.healthz.perSecond,
      healthzP50Ms: x.healthz.p50Ms,
      healthzP99Ms: x.healthz.p99Ms,
      healthzMaxMs: x.healthz.maxMs,
      healthzStatusCodes: x.healthz.statusCodes,
    })),
    resetCompletion: figuresOf(r.resetCompletion, (x) => ({
      completionsPerSec: x.completionsPerSecond,
      p50Ms: x.p50Ms,
      p99Ms: x.p99Ms,
      completions: x.completions,
      tokens: x.tokens,
      clients: x.clients,
      cpuUsPerCompletion: x.serverCpuUsPerCompletion,
      unexpected: x.unexpected,
    })),
    emailDelivery: figuresOf(r.emailDelivery, emailFigures),
    emailDeliveryPool10: figuresOf(r.emailDeliveryPool10, emailFigures),
    pgForgotPassword: figuresOf(r.pgForgotPassword, (x) => ({ ...loadFigures(x.load, 202), backlogAtEnd: x.mail.backlogAtEnd, drainSeconds: x.mail.drainSeconds })),
    pgSignIn: figuresOf(r.pgSignIn, (x) => loadFigures(x.load, 200)),
    timingControl: figuresOf(r.timingControl, timingFigures),
    timingGatehouse: figuresOf(r.timingGatehouse, timingFigures),
    timingBetterAuth: figuresOf(r.timingBetterAuth, timingFigures),
    betterAuth: figuresOf(r.betterAuth, (x) => ({ forgot: loadFigures(x.forgotPassword, 200), signInScrypt: loadFigures(x.signIn, 200) })),
    betterAuthArgon2: figuresOf(r.betterAuthArgon2, (x) => ({ signIn: loadFigures(x.signIn, 200) })),
    scryptRaw: figuresOf(r.scryptRaw, (x) => ({ verify1PerSec: x.rates[1]?.perSecond, verify2PerSec: x.rates[2]?.perSecond })),
  };
  const div = (a, b) => (a === undefined || b === undefined || !b ? undefined : Math.round((a / b) * 100) / 100);
  const ratios = {
    forgotVsBaseline: get(r, 'forgotPassword', 'ratioToBaseline'),
    forgotCpuVsBaseline: get(r, 'forgotPassword', 'cpuPerRequestToBaseline'),
    forgotVsBetterAuth: get(r, 'betterAuth', 'gatehouseForgotToThis'),
    emailVsDirect: get(r, 'emailDelivery', 'ratioToDirect'),
    emailVsDirectPool10: get(r, 'emailDeliveryPool10', 'ratioToDirect'),
    signInVsRawArgon2: get(r, 'signIn', 'ratioToRawHash'),
    signInSaturatedVsRawArgon2: get(r, 'signInSaturated', 'ratioToRawHash'),
    resetVsRawArgon2Hash: get(r, 'resetCompletion', 'ratioToRawHash'),
    pgForgotVsBaseline: get(r, 'pgForgotPassword', 'ratioToBaseline'),
    pgForgotVsSqlite: div(get(figures, 'pgForgotPassword', 'reqPerSec'), get(figures, 'forgotPassword', 'reqPerSec')),
    pgSignInVsRawArgon2: get(r, 'pgSignIn', 'ratioToRawHash'),
    signInVsBetterAuthArgon2: div(get(figures, 'signIn', 'reqPerSec'), get(figures, 'betterAuthArgon2', 'signIn', 'reqPerSec')),
    timingGatehouseToControl: div(get(r, 'timingGatehouse', 'medianDiffMs'), get(r, 'timingControl', 'medianDiffMs')),
  };
  const saturated = r.signInSaturated?.error === undefined ? r.signInSaturated : undefined;
  const targetsMet = {
    forgotVsBaseline: check(ratios.forgotVsBaseline, (v) => v >= 0.35),
    forgotRequestPathCpu: check(get(r, 'forgotPassword', 'mainThreadCpuUsPerRequest'), (v) => v <= 250),
    forgotVsBetterAuth: check(ratios.forgotVsBetterAuth, (v) => v >= 10),
    emailVsDirect: check(ratios.emailVsDirect, (v) => v >= 0.9),
    emailVsDirectPool10: check(ratios.emailVsDirectPool10, (v) => v >= 0.9),
    signInVsRawArgon2: check(ratios.signInVsRawArgon2, (v) => v >= 0.9),
    signInSaturatedShedsWith503: check(saturated, (s) => s.shedWithRetryAfter > 0 && s.shedWithoutRetryAfter === 0 && s.okP99Ms !== undefined && s.okP99Ms < 2000),
    healthzP99UnderSignInSaturation: check(saturated?.healthz?.p99Ms, (v) => v < 20 && saturated.healthz.errors === 0),
    idleRss: check(get(r, 'forgotPassword', 'memory', 'idleRssMb'), (v) => v < 100),
    peakRssForgot: check(get(r, 'forgotPassword', 'memory', 'peakRssMb') ?? get(r, 'forgotPassword', 'memory', 'sampledPeakMb'), (v) => v < 150),
    timingControlDetected: check(get(r, 'timingControl', 'detected'), (v) => v),
    timingGatehouse: check(get(r, 'timingGatehouse', 'indistinguishable'), (v) => v),
  };
  const loadAverages = Object.fromEntries(Object.entries(r).filter(([, x]) => x?.loadAverageAtStart !== undefined).map(([id, x]) => [id, x.loadAverageAtStart]));
  const orNull = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v ?? null]));
  return {
    bench: 'gatehouse',
    startedAt: new Date(startedAtMs).toISOString(),
    seconds,
    machine: { cpus: machine.cpus, node: machine.node, loadAverageAtStart: machine.loadAverageAtStart.map(round2), loadAverageAtEnd: machine.loadAverageAtEnd.map(round2) },
    loadAverages,
    ratios: orNull(ratios),
    targetsMet,
    figures: orNull(figures),
    leftOverDatabases,
  };
}
