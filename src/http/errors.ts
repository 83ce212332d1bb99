import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { databaseUnavailable, DomainError, invalidInput, notFound, rateLimited } from '../errors.js';
import type { ErrorBody } from './schemas.js';

/** HTTP's own refusals, raised by the HTTP layer only. */
export const HTTP_ERROR_CODES = ['forbidden_origin', 'method_not_allowed', 'payload_too_large', 'unsupported_media_type', 'shutting_down'] as const;

/**
 * The one table from error code to HTTP status: domain code raises DomainErrors with a code and
 * never says a status. A code missing here is answered 500 (and logged): test/http/error-codes
 * checks that every code a feature declares is in it.
 */
export const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  // common (src/errors.ts)
  invalid_request: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  rate_limited: 429,
  overloaded: 503,
  database_unavailable: 503,
  // HTTP
  forbidden_origin: 403,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  shutting_down: 503,
  // accounts
  invalid_credentials: 401,
  sign_in_locked: 403,
  invalid_current_password: 400,
  password_change_required: 403,
  weak_password: 400,
  email_taken: 409,
  username_taken: 409,
  last_admin: 409,
  cannot_delete_self: 409,
  cannot_demote_self: 409,
  cannot_disable_self: 409,
  // recovery
  invalid_or_expired_token: 400,
  password_mismatch: 400,
  no_email: 409,
  user_disabled: 409,
  // mail
  reauthentication_required: 400,
  delivery_target_locked: 409,
  email_settings_not_saved: 409,
};

/** An error of the HTTP layer itself. */
export const httpError = (code: (typeof HTTP_ERROR_CODES)[number], message: string): DomainError => new DomainError(code, message);

// Until the CLI catches DomainError by its own name.
export { DomainError as HttpError };

export type { ErrorBody } from './schemas.js';

export function sendError(reply: FastifyReply, err: DomainError, options: { status?: number } = {}): FastifyReply {
  const status = options.status ?? STATUS_OF_CODE[err.code];
  if (status === undefined) {
    reply.log.error({ code: err.code }, 'error code without an HTTP status');
    return reply.code(500).send({ error: 'internal_error', message: 'Something went wrong on our side.' } satisfies ErrorBody);
  }
  if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
  return reply.code(status).send({ error: err.code, message: err.message, ...err.details } satisfies ErrorBody);
}

// Fastify's own client errors, by their codes, mapped to ours.
const FASTIFY_CODES: Record<string, [string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['payload_too_large', 'The request body is too large.'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['unsupported_media_type', 'Send the body as application/json.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['invalid_request', 'The request body is not valid.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['invalid_request', 'The request body is empty.'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['invalid_request', 'The request body is not valid JSON.'],
  FST_ERR_CTP_EMPTY_TYPE: ['unsupported_media_type', 'Send the body as application/json.'],
  FST_ERR_CTP_INVALID_TYPE: ['unsupported_media_type', 'Send the body as application/json.'],
};

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | DomainError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof DomainError) return sendError(reply, err);
    const fe = err as FastifyError;
    if (fe.validation) {
      // fromEntries, not assignment: a field named __proto__ must show up, not vanish.
      const fields = Object.fromEntries(
        fe.validation.map((v) => {
          const missing = (v.params as { missingProperty?: string } | undefined)?.missingProperty;
          const extra = (v.params as { additionalProperty?: string } | undefined)?.additionalProperty;
          const field = missing ?? extra ?? v.instancePath.replace(/^\//, '').replaceAll('/', '.');
          return [field || '(body)', extra ? 'Unknown field.' : missing ? 'Required.' : (v.message ?? 'Invalid.')];
        }),
      ) as Record<string, string>;
      return sendError(reply, invalidInput('Some fields are not valid.', fields));
    }
    const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
    if (mapped) return sendError(reply, new DomainError(mapped[0], mapped[1]));
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      if (fe.statusCode === 429) return sendError(reply, rateLimited(60));
      if (fe.statusCode === 404) return sendError(reply, notFound('The request is not valid.'));
      // Another client error of the framework's own: its status, our body.
      return sendError(reply, invalidInput(), { status: fe.statusCode });
    }
    if (isDatabaseUnreachable(err)) {
      request.log.error({ err: { message: err.message, code: (err as { code?: unknown }).code }, req: request }, 'database unreachable');
      return sendError(reply, databaseUnavailable(5));
    }
    // `req` goes through the logger's serializer, which keeps the path and redacts every query value.
    request.log.error({ err, req: request }, 'unhandled error');
    // No detail ever leaves the server on a 5xx.
    return reply.code(500).send({ error: 'internal_error', message: 'Something went wrong on our side.' } satisfies ErrorBody);
  });
}

// Socket errors, and PostgreSQL's class 08 (connection exception) and 57P01–57P03 (shutting down,
// crashed, not accepting connections yet). Every write here is one statement or one transaction,
// so none is left half-done; one cut off during its commit may or may not have been applied.
const UNREACHABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);
const UNREACHABLE_MESSAGES = /^(Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect)/;

/** Whether an error says the database could not be reached, rather than that a query was wrong. */
export function isDatabaseUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNREACHABLE_SOCKET_CODES.has(code) || code.startsWith('08') || /^57P0[123]$/.test(code))) return true;
  if (err instanceof AggregateError) return err.errors.some(isDatabaseUnreachable);
  return UNREACHABLE_MESSAGES.test(err.message);
}
