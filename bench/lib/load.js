// autocannon, the same way for every HTTP scenario: JSON POSTs whose bodies rotate through a
// list (so the baseline pays the same request-building cost as the real endpoints), one short
// warm-up, then the measured run.
import fs from 'node:fs';
import autocannon from 'autocannon';

/** CPU milliseconds (user + system) a process has used so far, all its threads; undefined off Linux. */
export function processCpuMs(pid) {
  return statCpuMs(`/proc/${pid}/stat`);
}

/**
 * CPU milliseconds of one thread of a process; by default its main thread (tid = pid), the one
 * that runs the event loop: the request path, without worker_threads or libuv's pool.
 */
export function threadCpuMs(pid, tid = pid) {
  return statCpuMs(`/proc/${pid}/task/${tid}/stat`);
}

function statCpuMs(file) {
  try {
    const fields = fs.readFileSync(file, 'utf8').split(') ')[1].split(' ');
    // utime and stime, in clock ticks (100 per second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/**
 * @param {{ url: string, path: string, bodies: object[], headers?: Record<string, string>,
 *           connections: number, durationSeconds?: number, amount?: number, serverPid?: number }} o
 */
export async function cannon(o) {
  const serverCpuBefore = o.serverPid === undefined ? undefined : processCpuMs(o.serverPid);
  const mainCpuBefore = o.serverPid === undefined ? undefined : threadCpuMs(o.serverPid);
  const ownCpuBefore = process.cpuUsage();
  const payloads = o.bodies.map((b) => JSON.stringify(b));
  let next = 0;
  const result = await autocannon({
    url: o.url,
    connections: o.connections,
    ...(o.amount !== undefined ? { amount: o.amount } : { duration: o.durationSeconds }),
    timeout: 30,
    requests: [
      {
        method: 'POST',
        path: o.path,
        headers: { 'content-type': 'application/json', ...o.headers },
        setupRequest(request) {
          request.body = payloads[next++ % payloads.length];
          return request;
        },
      },
    ],
  });
  const m = summarize(result);
  // CPU per request is robust where req/s is not: other work on the machine lowers req/s, but
  // hardly changes what each request costs the server.
  const serverCpuAfter = o.serverPid === undefined ? undefined : processCpuMs(o.serverPid);
  if (serverCpuBefore !== undefined && serverCpuAfter !== undefined && m.total > 0) {
    m.serverCpuUsPerRequest = Math.round(((serverCpuAfter - serverCpuBefore) * 1000) / m.total);
    m.serverCores = round((serverCpuAfter - serverCpuBefore) / 1000 / result.duration, 2);
  }
  const mainCpuAfter = o.serverPid === undefined ? undefined : threadCpuMs(o.serverPid);
  if (mainCpuBefore !== undefined && mainCpuAfter !== undefined && m.total > 0) {
    // The event loop's thread only: what each request costs on the request path.
    m.mainThreadCpuUsPerRequest = Math.round(((mainCpuAfter - mainCpuBefore) * 1000) / m.total);
    m.mainThreadCores = round((mainCpuAfter - mainCpuBefore) / 1000 / result.duration, 2);
  }
  const own = process.cpuUsage(ownCpuBefore);
  m.loadGeneratorCores = round((own.user + own.system) / 1e6 / result.duration, 2);
  return m;
}

/** The figures the report uses, from an autocannon result. */
export function summarize(r) {
  const statusCodes = Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([code, s]) => [code, s.count]));
  const total = Object.values(statusCodes).reduce((a, b) => a + b, 0);
  return {
    reqPerSec: round(total / r.duration),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    total,
    durationSeconds: round(r.duration),
    statusCodes,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    connections: r.connections,
  };
}

/**
 * Warm-up (discarded), then the measured run. Between the two, one request of the same kind
 * is awaited: the warm-up's last requests may still be queued in the server (a slow password
 * hash), and must not be counted in, or slow down, the measured run.
 */
export async function warmThenMeasure(o, warmupSeconds) {
  if (warmupSeconds > 0) {
    await cannon({ ...o, durationSeconds: warmupSeconds });
    await settle(o);
  }
  return cannon(o);
}

export async function settle(o) {
  await fetch(new URL(o.path, o.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...o.headers },
    body: JSON.stringify(o.bodies[0]),
    signal: AbortSignal.timeout(60_000),
  }).then((r) => r.arrayBuffer());
}

export function round(n, digits = 1) {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
