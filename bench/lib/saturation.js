// Sign-in saturated: many more clients than the server hashes at once, each sending a sign-in as
// soon as its previous one is answered (after the Retry-After a 503 names, as a polite client
// would), while a light second client polls GET /healthz at a steady pace and records how long
// it waits. Every answer's status, Retry-After and latency is kept (autocannon keeps neither).
import { processCpuMs, round, threadCpuMs } from './load.js';
import { keepAliveAgent, ms2, percentile, request } from './http-client.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {{ url: string, origin: string, bodies: object[], connections: number, durationSeconds: number,
 *           warmupSeconds: number, healthzPerSecond: number, serverPid?: number, maxRetryWaitMs?: number }} o
 */
export async function signInSaturated(o) {
  const agent = keepAliveAgent(o.connections);
  const headers = { origin: o.origin };
  const startAt = performance.now();
  const measureFrom = startAt + o.warmupSeconds * 1000;
  const measureTo = measureFrom + o.durationSeconds * 1000;
  const seen = { statusCodes: {}, ok: [], shedWithRetryAfter: 0, shedWithoutRetryAfter: 0, retryAfterSeconds: {}, shedReasons: {}, errors: 0 };
  let next = 0;

  const client = async () => {
    while (performance.now() < measureTo) {
      const startedAt = performance.now();
      const counted = startedAt >= measureFrom;
      let r;
      try {
        r = await request({ agent, url: o.url, path: '/api/auth/login', body: o.bodies[next++ % o.bodies.length], headers });
      } catch {
        if (counted) seen.errors++;
        await sleep(100);
        continue;
      }
      if (counted) record(seen, r);
      if (r.status === 503) await sleep(Math.min(retryAfterMs(r), o.maxRetryWaitMs ?? 2000));
    }
  };

  const cpu = {};
  const healthz = (async () => {
    await sleep(Math.max(0, measureFrom - performance.now()));
    cpu.before = { all: processCpuMs(o.serverPid), main: threadCpuMs(o.serverPid) };
    const result = await pollHealthz({ url: o.url, perSecond: o.healthzPerSecond, until: measureTo });
    cpu.after = { all: processCpuMs(o.serverPid), main: threadCpuMs(o.serverPid) };
    return result;
  })();

  try {
    await Promise.all(Array.from({ length: o.connections }, client));
  } finally {
    agent.destroy();
  }
  const health = await healthz;
  const okCount = seen.ok.length;
  const answered = Object.values(seen.statusCodes).reduce((a, b) => a + b, 0);
  const cpuMs = (k) => (cpu.before?.[k] === undefined || cpu.after?.[k] === undefined ? undefined : cpu.after[k] - cpu.before[k]);
  return {
    connections: o.connections,
    durationSeconds: o.durationSeconds,
    okPerSecond: round(okCount / o.durationSeconds),
    okP50Ms: ms2(percentile(seen.ok, 50)),
    okP99Ms: ms2(percentile(seen.ok, 99)),
    okMaxMs: ms2(percentile(seen.ok, 100)),
    statusCodes: seen.statusCodes,
    shedWithRetryAfter: seen.shedWithRetryAfter,
    shedWithoutRetryAfter: seen.shedWithoutRetryAfter,
    retryAfterSeconds: seen.retryAfterSeconds,
    shedReasons: seen.shedReasons,
    socketErrors: seen.errors,
    serverCpuUsPerRequest: cpuMs('all') === undefined || answered === 0 ? undefined : Math.round((cpuMs('all') * 1000) / answered),
    serverCpuUsPerSignIn: cpuMs('all') === undefined || okCount === 0 ? undefined : Math.round((cpuMs('all') * 1000) / okCount),
    mainThreadCores: cpuMs('main') === undefined ? undefined : round(cpuMs('main') / 1000 / o.durationSeconds, 2),
    healthz: health,
  };
}

function record(seen, r) {
  seen.statusCodes[r.status] = (seen.statusCodes[r.status] ?? 0) + 1;
  if (r.status === 200) seen.ok.push(r.ms);
  if (r.status !== 503) return;
  const retryAfter = r.headers['retry-after'];
  if (retryAfter === undefined) seen.shedWithoutRetryAfter++;
  else {
    seen.shedWithRetryAfter++;
    seen.retryAfterSeconds[retryAfter] = (seen.retryAfterSeconds[retryAfter] ?? 0) + 1;
  }
  const reason = typeof r.body === 'object' && r.body !== null ? String(r.body.error ?? r.body.code ?? '?') : '?';
  seen.shedReasons[reason] = (seen.shedReasons[reason] ?? 0) + 1;
}

/** Retry-After in ms (seconds or an HTTP date); 1 s when absent or unreadable. */
function retryAfterMs(r) {
  const v = r.headers['retry-after'];
  if (v === undefined) return 1000;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return seconds * 1000;
  const at = Date.parse(String(v));
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : 1000;
}

/** GET /healthz every 1/perSecond s over its own connection until `until` (performance.now()). */
async function pollHealthz({ url, perSecond, until }) {
  const agent = keepAliveAgent(1);
  const interval = 1000 / perSecond;
  const times = [];
  const statusCodes = {};
  let errors = 0;
  try {
    for (let due = performance.now(); due < until; due += interval) {
      await sleep(Math.max(0, due - performance.now()));
      try {
        const r = await request({ agent, url, path: '/healthz', timeoutMs: 10_000 });
        statusCodes[r.status] = (statusCodes[r.status] ?? 0) + 1;
        times.push(r.ms);
      } catch {
        errors++;
      }
      // A slow answer does not make the next ones come in a burst.
      if (performance.now() > due + interval) due = performance.now() - interval;
    }
  } finally {
    agent.destroy();
  }
  return { perSecond, requests: times.length, p50Ms: ms2(percentile(times, 50)), p99Ms: ms2(percentile(times, 99)), maxMs: ms2(percentile(times, 100)), statusCodes, errors };
}
