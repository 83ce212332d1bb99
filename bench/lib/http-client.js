// Plain keep-alive HTTP/1.1 requests from this process (node:http), for the scenarios that need
// more than autocannon gives: each answer's status, headers and latency, requests one at a time,
// or clients that follow a flow (verify, then reset).
import http from 'node:http';

/** A keep-alive agent with at most `sockets` connections. */
export function keepAliveAgent(sockets = 1) {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
}

/**
 * One request; resolves with the status, the headers, the body (parsed when JSON) and the
 * latency in ms (from the call to the last byte). Never rejects on an HTTP status.
 * @param {{ agent: http.Agent, url: string, method?: string, path: string, body?: unknown, headers?: Record<string, string>, timeoutMs?: number }} o
 */
export function request(o) {
  return new Promise((resolve, reject) => {
    const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
    const startedAt = performance.now();
    const req = http.request(
      new URL(o.path, o.url),
      {
        method: o.method ?? (payload === undefined ? 'GET' : 'POST'),
        agent: o.agent,
        headers: { ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }), ...o.headers },
        timeout: o.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const ms = performance.now() - startedAt;
          const text = Buffer.concat(chunks).toString('utf8');
          let body = text;
          if (String(res.headers['content-type']).includes('json')) {
            try {
              body = JSON.parse(text);
            } catch {
              // keep the text
            }
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, ms });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${o.path}: no answer in ${o.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Percentile (0-100) of numbers, nearest rank; undefined for none. */
export function percentile(values, p) {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Rounds to 2 decimals (ms figures of sub-ms differences need them). */
export const ms2 = (n) => (n === undefined ? undefined : Math.round(n * 100) / 100);
