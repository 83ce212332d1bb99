// Reset completion: real reset tokens, as a user gets them (forgot-password, then the link in the
// email the SMTP sink received), then clients that each open a link (POST …/verify) and choose a
// new password (POST /api/auth/reset-password).
import { randomBytes } from 'node:crypto';
import { processCpuMs, round, threadCpuMs } from './load.js';
import { keepAliveAgent, ms2, percentile, request } from './http-client.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * One forgot-password per address (10 at a time), then the tokens the sink extracted: the last
 * one per recipient, so one live token per user.
 * @param {{ server: { url: string, origin: string }, emails: string[], sinkAsk: (msg: object) => Promise<any>, timeoutMs?: number }} o
 */
export async function collectResetTokens(o) {
  await o.sinkAsk({ cmd: 'collect', on: true });
  const agent = keepAliveAgent(10);
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < o.emails.length) {
          const r = await request({ agent, url: o.server.url, path: '/api/auth/forgot-password', body: { email: o.emails[next++] }, headers: { origin: o.server.origin } });
          if (r.status !== 202) throw new Error(`forgot-password answered ${r.status}: ${JSON.stringify(r.body)}`);
        }
      }),
    );
    const deadline = Date.now() + (o.timeoutMs ?? 30_000);
    let tokens = [];
    while (Date.now() < deadline) {
      tokens = (await o.sinkAsk({ cmd: 'tokens' })).tokens;
      if (tokens.length >= o.emails.length) break;
      await sleep(100);
    }
    return tokens.map((t) => t.token);
  } finally {
    agent.destroy();
    await o.sinkAsk({ cmd: 'collect', on: false });
  }
}

/** A new password the policy accepts: random, long, three character classes. */
const newPassword = () => `${randomBytes(12).toString('base64url')}7Bq`;

/**
 * `clients` loops; each takes the next token, verifies it (200 expected), then resets with it
 * (204 expected). A completion is both answered as expected.
 * @param {{ url: string, origin: string, tokens: string[], clients: number, serverPid?: number }} o
 */
export async function completeResets(o) {
  const agent = keepAliveAgent(o.clients);
  const headers = { origin: o.origin };
  const pairs = [];
  const verifyMs = [];
  const resetMs = [];
  const unexpected = {};
  const note = (what) => (unexpected[what] = (unexpected[what] ?? 0) + 1);
  let next = 0;
  const cpuBefore = { all: processCpuMs(o.serverPid), main: threadCpuMs(o.serverPid) };
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: o.clients }, async () => {
        while (next < o.tokens.length) {
          const token = o.tokens[next++];
          const verify = await request({ agent, url: o.url, path: '/api/auth/reset-password/verify', body: { token }, headers });
          if (verify.status !== 200) {
            note(`verify ${verify.status} ${verify.body?.error ?? ''}`.trim());
            continue;
          }
          const password = newPassword();
          const reset = await request({ agent, url: o.url, path: '/api/auth/reset-password', body: { token, password, confirmPassword: password }, headers });
          if (reset.status !== 204) {
            note(`reset ${reset.status} ${reset.body?.error ?? ''}`.trim());
            continue;
          }
          verifyMs.push(verify.ms);
          resetMs.push(reset.ms);
          pairs.push(verify.ms + reset.ms);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpuAll = processCpuMs(o.serverPid);
  const cpuMain = threadCpuMs(o.serverPid);
  const n = pairs.length;
  return {
    tokens: o.tokens.length,
    completions: n,
    clients: o.clients,
    seconds: round(seconds, 2),
    completionsPerSecond: round(n / Math.max(seconds, 0.001)),
    p50Ms: ms2(percentile(pairs, 50)),
    p99Ms: ms2(percentile(pairs, 99)),
    verifyP50Ms: ms2(percentile(verifyMs, 50)),
    resetP50Ms: ms2(percentile(resetMs, 50)),
    unexpected,
    serverCpuUsPerCompletion: cpuAll === undefined || cpuBefore.all === undefined || n === 0 ? undefined : Math.round(((cpuAll - cpuBefore.all) * 1000) / n),
    mainThreadCpuUsPerCompletion: cpuMain === undefined || cpuBefore.main === undefined || n === 0 ? undefined : Math.round(((cpuMain - cpuBefore.main) * 1000) / n),
  };
}
