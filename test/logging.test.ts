import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../src/clock.js';
import { createMemoryRateLimiter } from '../src/limits/rate-limiter.js';
import { createLogger, type LogFormat } from '../src/logger.js';
import { addUser, makeTestApp, type TestContext } from './helpers/app.js';

// Issue 10 item 10: readable lines on a terminal, JSON otherwise; one request line per request at
// LOG_LEVEL=debug only; redaction whatever the format.

function capture(level: string, format: LogFormat, colorize = false) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter((line) => line !== ''));
      callback();
    },
  });
  return { logger: createLogger(level, sink, { format, colorize }), lines };
}

const isJson = (line: string): boolean => {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
};

const SECRET = 'Hunter2-correct-horse-battery';
const TOKEN = 'T0k3n'.repeat(8);

/** Everything that could carry a credential, the way code in this repository logs it. */
function logSecrets(logger: ReturnType<typeof createLogger>): void {
  logger.info({ password: SECRET, token: TOKEN }, 'top-level keys');
  logger.warn({ input: { body: { newPassword: SECRET, confirmPassword: SECRET } }, secret: SECRET }, 'nested keys');
  logger.child({ reqId: 'req-1' }).error({ err: new Error(`fetch /reset-password?token=${TOKEN} failed`) }, `in the "/reset-password?token=${TOKEN}" route`);
  logger.info({ req: { method: 'GET', url: `/reset-password?token=${TOKEN}`, headers: { cookie: `gh_session=${TOKEN}`, authorization: `Bearer ${TOKEN}` } } }, 'incoming request');
  logger.info({ link: `https://dash.example.com/reset-password?token=${TOKEN}`, headers: { authorization: `Basic ${SECRET}` }, cookie: `gh_session=${TOKEN}` }, 'other fields');
}

describe('the two formats', () => {
  it('json: every line is one JSON object with level, time and msg', () => {
    const { logger, lines } = capture('info', 'json');
    logger.info({ user: 'jane' }, 'signed in');
    logger.error({ err: new Error('boom') }, 'it failed');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(isJson(line), line).toBe(true);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: 'signed in', user: 'jane' });
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 50, msg: 'it failed', err: { message: 'boom' } });
  });

  it('pretty: one readable line per entry, with time, level and message; no JSON, no colours unless asked', () => {
    const { logger, lines } = capture('info', 'pretty');
    logger.info({ user: 'jane' }, 'signed in');
    logger.warn('mail settings cannot send');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(isJson(line), line).toBe(false);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: signed in \{"user":"jane"\}$/);
    expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: mail settings cannot send$/);
    expect(lines.join('')).not.toContain('\u001b[');
    expect(lines.join('')).not.toContain('hostname');
  });

  it('pretty: an error keeps its stack, below its line', () => {
    const { logger, lines } = capture('info', 'pretty');
    logger.error({ err: new Error('boom') }, 'it failed');
    expect(lines[0]).toMatch(/^\[[\d:.]+\] ERROR: it failed\s*$/);
    expect(lines.join('\n')).toContain('Error: boom');
    expect(lines.join('\n')).toMatch(/at .*logging\.test\.ts/);
  });

  it('pretty on a terminal: colours', () => {
    const { logger, lines } = capture('info', 'pretty', true);
    logger.warn('coloured');
    expect(lines.join('')).toContain('\u001b[');
  });

  it('levels below LOG_LEVEL are dropped in both formats', () => {
    for (const format of ['json', 'pretty'] as const) {
      const { logger, lines } = capture('warn', format);
      logger.info('quiet');
      logger.debug('quieter');
      logger.warn('loud');
      expect(lines, format).toHaveLength(1);
      expect(lines[0], format).toContain('loud');
    }
  });
});

describe('redaction holds in both formats', () => {
  it.each(['json', 'pretty'] as const)('%s: no password, token, cookie or query value reaches a line', (format) => {
    const { logger, lines } = capture('trace', format);
    logSecrets(logger);
    const text = lines.join('\n');
    expect(lines.length).toBeGreaterThanOrEqual(5);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(TOKEN);
    // Still useful: the keys are there, censored, and the path is kept.
    expect(text).toContain('[redacted]');
    expect(text).toContain('/reset-password?token=[redacted]');
    expect(text).toContain('top-level keys');
    expect(text).toContain('nested keys');
  });

  it.each(['json', 'pretty'] as const)('%s: a sign-in and a password reset through the app leave no password or token in the log', async (format) => {
    const { logger, lines } = capture('trace', format);
    ctx = await makeTestApp({ deps: { logger } });
    await addUser(ctx, { email: 'jane@example.com', username: 'jane', password: SECRET });
    const login = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'jane', password: SECRET } });
    expect(login.statusCode).toBe(200);
    const cookie = login.headers['set-cookie']!.toString().split(';')[0]!;
    await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } });
    await ctx.app.inject({ method: 'POST', url: `/api/auth/reset-password/verify?token=${TOKEN}`, payload: { token: TOKEN } });
    await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'jane', password: `${SECRET}-wrong` } });
    const text = lines.join('\n');
    // The request lines are there (trace logs them all)...
    expect(text).toContain('/api/auth/reset-password/verify?token=[redacted]');
    // ...and nothing secret is.
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(cookie.split('=')[1]!);
  });
});

let ctx: TestContext | undefined;
afterEach(async () => {
  await ctx?.close();
  ctx = undefined;
});

describe('request lines', () => {
  async function appLoggingAt(level: string, format: LogFormat) {
    const captured = capture(level, format);
    ctx = await makeTestApp({ deps: { logger: captured.logger } });
    return captured;
  }

  it('at info: no line for an answered request, whatever its status', async () => {
    const { lines } = await appLoggingAt('info', 'json');
    expect((await ctx!.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await ctx!.app.inject({ method: 'GET', url: '/api/auth/me' })).statusCode).toBe(401);
    expect((await ctx!.app.inject({ method: 'GET', url: '/api/nope' })).statusCode).toBe(404);
    expect(lines.filter((line) => line.includes('request'))).toEqual([]);
  });

  it('at debug: exactly one line per request, with method, path, status and time', async () => {
    const { lines } = await appLoggingAt('debug', 'json');
    await ctx!.app.inject({ method: 'GET', url: '/healthz' });
    await ctx!.app.inject({ method: 'GET', url: '/api/auth/me?x=1' });
    const requestLines = lines.map((line) => JSON.parse(line) as Record<string, any>).filter((entry) => entry.req !== undefined);
    expect(requestLines).toHaveLength(2);
    expect(requestLines[0]).toMatchObject({ level: 20, msg: 'request completed', req: { method: 'GET', url: '/healthz' }, res: { statusCode: 200 } });
    expect(typeof requestLines[0]!.responseTime).toBe('number');
    expect(typeof requestLines[0]!.reqId).toBe('string');
    expect(requestLines[1]).toMatchObject({ level: 20, req: { method: 'GET', url: '/api/auth/me?x=[redacted]' }, res: { statusCode: 401 } });
  });

  it('at debug, pretty: the request line reads "GET /path → status (time)"', async () => {
    const { lines } = await appLoggingAt('debug', 'pretty');
    await ctx!.app.inject({ method: 'GET', url: '/api/auth/me?token=abc' });
    const requestLines = lines.filter((line) => line.includes('/api/auth/me'));
    expect(requestLines).toHaveLength(1);
    expect(requestLines[0]).toMatch(/^\[[\d:.]+\] DEBUG: GET \/api\/auth\/me\?token=\[redacted\] → 401 \(\d+(\.\d)? ms\) \{"reqId":"[^"]+"\}$/);
  });

  it('at info, an unhandled error is still logged, at error, with its path', async () => {
    const { logger, lines } = capture('info', 'json');
    const limiter = createMemoryRateLimiter(systemClock);
    ctx = await makeTestApp({
      deps: {
        logger,
        limiter: {
          ...limiter,
          hit: async () => {
            throw new Error('the limiter failed');
          },
        },
      },
    });
    const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password?x=1', payload: { email: 'jane@example.com' } });
    expect(res.statusCode).toBe(500);
    const entries = lines.map((line) => JSON.parse(line) as Record<string, any>);
    const errors = entries.filter((entry) => entry.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ msg: 'unhandled error', req: { method: 'POST', url: '/api/auth/forgot-password?x=[redacted]' }, err: { message: 'the limiter failed' } });
    expect(entries.filter((entry) => entry.msg === 'request completed')).toEqual([]);
  });
});
