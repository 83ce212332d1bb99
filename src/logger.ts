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

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT, censor: '[redacted]' } }, destination);
}
