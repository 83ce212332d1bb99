import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import { createLogger, redactQueryValuesInText, redactUrl } from '../../src/logger.js';
import { systemClock } from '../../src/clock.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';

// Hardening item 5: an old link, a mail scanner or a person pasting can put a reset token in a
// URL's query string; no log line may carry a query value.

describe('redactUrl', () => {
  it.each([
    ['/reset-password', '/reset-password'],
    ['/reset-password?token=abc', '/reset-password?token=[redacted]'],
    ['/api/audit?limit=50&before=2026-03-01', '/api/audit?limit=[redacted]&before=[redacted]'],
    ['/reset-password?token=abc#token=def', '/reset-password?token=[redacted]'],
    ['/reset-password?abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG', '/reset-password?[redacted]'],
    ['/x?a&&b=', '/x?[redacted]&b=[redacted]'],
    [`/x?${'k'.repeat(40)}=v`, '/x?[redacted]'],
    ['/x?to%20ken=v', '/x?[redacted]'],
    ['/x?', '/x?'],
  ])('%s → %s', (url, logged) => {
    expect(redactUrl(url)).toBe(logged);
  });
});

describe('redactQueryValuesInText', () => {
  it.each([
    ['Reply was already sent in the "/reset-password?token=abc" route', 'Reply was already sent in the "/reset-password?token=[redacted]" route'],
    ['see https://example.com/a?x=1&y=2#token=z', 'see https://example.com/a?x=[redacted]&y=[redacted]#token=[redacted]'],
    ['GET /reset-password?SECRETVALUE HTTP/1.1', 'GET /reset-password?[redacted] HTTP/1.1'],
    ['Forgot your password? Ask again.', 'Forgot your password? Ask again.'],
    ['{"url":"/x?token=[redacted]"}', '{"url":"/x?token=[redacted]"}'],
  ])('%s', (text, logged) => {
    expect(redactQueryValuesInText(text)).toBe(logged);
  });
});

describe('no query value reaches a log line', () => {
  let ctx: TestContext;
  afterEach(async () => {
    await ctx?.close();
  });

  /** A real reset token, mailed to a real account. */
  async function realToken(): Promise<string> {
    await addUser(ctx, { email: 'jane@example.com' });
    await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'jane@example.com' } });
    await ctx.outbox.drain();
    const token = /#token=([A-Za-z0-9_-]{43})/.exec(ctx.mailer.sent.at(-1)?.text ?? '')?.[1];
    if (token === undefined) throw new Error('no reset mail');
    return token;
  }

  const linesWith = (needle: string): string[] => ctx.logs.flatMap((chunk) => chunk.split('\n')).filter((line) => line.includes(needle));

  it('GET /reset-password?token=… logs the path and the parameter name, never the token', async () => {
    ctx = await makeTestApp();
    const token = await realToken();
    const urls = [
      `/reset-password?token=${token}`,
      `//reset-password?token=${token}`,
      `/reset-password?utm_source=mail&token=${token}`,
      `/reset-password?${token}`,
      `/reset-password?token=${token}#token=${token}`,
      `/api/auth/me?token=${token}`,
      `/api/nope?token=${token}`,
    ];
    for (const url of urls) await ctx.app.inject({ method: 'GET', url });
    await ctx.app.inject({ method: 'POST', url: `/api/auth/reset-password/verify?token=${token}`, payload: { token: 'A'.repeat(43) } });

    expect(linesWith(token), 'log lines holding the token').toEqual([]);
    // The lines are still there and still useful: Fastify's request lines with the path.
    const incoming = linesWith('"incoming request"');
    expect(incoming.length).toBeGreaterThanOrEqual(urls.length + 1);
    expect(incoming.some((line) => line.includes('"url":"/reset-password?token=[redacted]"'))).toBe(true);
    expect(linesWith('"request completed"').length).toBeGreaterThanOrEqual(urls.length + 1);
  });

  it('an unhandled error is logged with the path and no query value, even when its message quotes the URL', async () => {
    const token = 'Q'.repeat(20) + 'secretsecretsecretsec';
    const failing = createMemoryRateLimiter(systemClock);
    ctx = await makeTestApp({
      deps: {
        limiter: {
          ...failing,
          hit: async () => {
            throw new Error(`the limiter failed while serving /api/auth/forgot-password?token=${token}`);
          },
        },
      },
    });
    const res = await ctx.app.inject({ method: 'POST', url: `/api/auth/forgot-password?token=${token}`, payload: { email: 'jane@example.com' } });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain(token);
    const errorLines = linesWith('"unhandled error"');
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain('"url":"/api/auth/forgot-password?token=[redacted]"');
    expect(errorLines[0]).toContain('the limiter failed while serving /api/auth/forgot-password?token=[redacted]');
    expect(linesWith(token), 'log lines holding the token').toEqual([]);
  });

  it('any logger made by createLogger, and its children, drop query values from messages and fields', () => {
    const lines: string[] = [];
    const logger = createLogger(
      'trace',
      new Writable({
        write(chunk, _encoding, callback) {
          lines.push(String(chunk));
          callback();
        },
      }),
    );
    const token = 'T0k3n'.repeat(8);
    const child = logger.child({ reqId: 'req-1' });
    child.warn(`Reply was already sent, did you forget to "return reply" in the "/reset-password?token=${token}" (GET) route?`);
    child.error({ err: new Error(`fetch /x?token=${token} failed`), link: `https://dash.example.com/reset-password?token=${token}` }, 'failed');
    logger.info({ req: { method: 'GET', url: `/reset-password?token=${token}` } }, 'incoming request');
    expect(lines).toHaveLength(3);
    expect(lines.filter((l) => l.includes(token))).toEqual([]);
    expect(lines.join('')).toContain('/reset-password?token=[redacted]');
  });
});
