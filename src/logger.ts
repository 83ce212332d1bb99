import pino, { type Logger } from 'pino';

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

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT, censor: CENSORED },
      // Fastify's "incoming request" line logs `req`; these serializers take precedence over its own.
      serializers: { req: serializeRequest },
      hooks: { streamWrite: redactQueryValuesInText },
    },
    destination,
  );
}
