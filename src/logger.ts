import { createRequire } from 'node:module';
import tty from 'node:tty';
import pino, { type DestinationStream, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';

// Anything that could carry a credential is censored wherever it appears in a log object.
const SENSITIVE_KEYS = ['password', 'newPassword', 'currentPassword', 'confirmPassword', 'token', 'secret', 'secretValue', 'cookie', 'authorization'];
const REDACT = [
  'req.headers.cookie',
  'req.headers.authorization',
  'res.headers["set-cookie"]',
  // At the top level and up to two objects deep (e.g. { input: { body: { password } } }).
  ...SENSITIVE_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
];

const CENSORED = '[redacted]';
/** A query parameter's name worth keeping in a log line; anything longer or odder may itself be a secret. */
const PARAMETER_NAME = /^[A-Za-z0-9_.[\]-]{1,32}$/;

/**
 * A request URL as it may be logged: the path, and each query parameter's value replaced.
 * An old reset link, a mail scanner or a pasted link can put `?token=…` in a URL; a log line
 * must never carry it (`/reset-password?token=abc` → `/reset-password?token=[redacted]`).
 */
export function redactUrl(url: string): string {
  const withoutFragment = url.split('#', 1)[0] ?? '';
  const q = withoutFragment.indexOf('?');
  if (q === -1) return withoutFragment;
  const parameters = withoutFragment
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=');
      const name = eq === -1 ? '' : p.slice(0, eq);
      return PARAMETER_NAME.test(name) ? `${name}=${CENSORED}` : CENSORED;
    });
  return `${withoutFragment.slice(0, q)}?${parameters.join('&')}`;
}

// `?name=value`, `&name=value`, `#name=value` and a bare `?value` anywhere in a finished line.
const QUERY_IN_TEXT = /([?&#])([^=&#?\s"\\<>]*)(=[^&#\s"\\<>]*)?/g;

/**
 * The last line of defence: whatever reaches a log line as text (an error message quoting a URL,
 * a framework warning naming the route it was in) loses its query values too.
 */
export function redactQueryValuesInText(text: string): string {
  if (!text.includes('=') && !text.includes('?')) return text;
  return text.replace(QUERY_IN_TEXT, (whole, sep: string, name: string, value: string | undefined) => {
    if (value === undefined) return sep === '?' && name !== '' ? `?${CENSORED}` : whole;
    if (value === `=${CENSORED}`) return whole;
    return PARAMETER_NAME.test(name) ? `${sep}${name}=${CENSORED}` : `${sep}${CENSORED}`;
  });
}

interface LoggedRequest {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  headers?: Record<string, unknown>;
  socket?: { remotePort?: number };
}

/** Fastify's request serializer, with the URL's query values redacted. */
function serializeRequest(req: LoggedRequest): Record<string, unknown> {
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : undefined,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

export type LogFormat = 'pretty' | 'json';

export interface LoggerOptions {
  /** json (the default): one JSON object per line; pretty: a readable line per entry (LOG_FORMAT) */
  format?: LogFormat;
  /** pretty only: colours; by default when the lines go to stdout and stdout is a terminal (and NO_COLOR is unset) */
  colorize?: boolean;
}

/**
 * The app's logger. Redaction (the censored keys, the request serializer, the query values in
 * the finished line) happens before the format: a pretty line is drawn from the redacted JSON.
 */
export function createLogger(level: string, destination?: DestinationStream, options: LoggerOptions = {}): Logger {
  const opts: pino.LoggerOptions = {
    level,
    redact: { paths: REDACT, censor: CENSORED },
    // Fastify's request lines log `req`; these serializers take precedence over its own.
    serializers: { req: serializeRequest },
    hooks: { streamWrite: redactQueryValuesInText },
  };
  if (options.format !== 'pretty') return pino(opts, destination);
  const colorize = options.colorize ?? (destination === undefined && tty.isatty(1) && process.env.NO_COLOR === undefined);
  return pino(opts, prettyStream(destination ?? pino.destination({ dest: 1, sync: true }), colorize));
}

/** The message of Fastify's line for an answered request (at debug: see app.ts). */
export const REQUEST_COMPLETED = 'request completed';

/**
 * Readable lines, written synchronously in this thread: no transport worker, nothing buffered
 * at exit. pino-pretty is loaded only when asked for (a service logging JSON never loads it).
 */
function prettyStream(out: DestinationStream, colorize: boolean): DestinationStream {
  const require = createRequire(import.meta.url);
  const { prettyFactory } = require('pino-pretty') as typeof PinoPretty;
  const prettify = prettyFactory({ colorize, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  return {
    write(line: string) {
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        out.write(line);
        return;
      }
      const text = prettify(isRecord(entry) ? asRequestLine(entry) : line);
      if (text !== undefined) out.write(text);
    },
  };
}

/** A request's line reads "GET /login → 200 (3.1 ms)" rather than its objects. */
function asRequestLine(entry: Record<string, unknown>): Record<string, unknown> {
  const { req, res, responseTime, ...rest } = entry;
  if (entry.msg !== REQUEST_COMPLETED || !isRecord(req) || !isRecord(res)) return entry;
  const took = typeof responseTime === 'number' ? ` (${responseTime < 10 ? responseTime.toFixed(1) : Math.round(responseTime)} ms)` : '';
  return { ...rest, msg: `${String(req.method)} ${String(req.url)} → ${String(res.statusCode)}${took}` };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
