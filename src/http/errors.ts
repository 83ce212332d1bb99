import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BusyError } from '../busy.js';

/** An error the client caused or may see: a stable code, a status and a safe message. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const errors = {
  invalidRequest: (message = 'The request is not valid.', fields?: Record<string, string>): HttpError =>
    new HttpError(400, 'invalid_request', message, fields ? { fields } : {}),
  unauthenticated: (): HttpError => new HttpError(401, 'unauthenticated', 'Sign in first.'),
  forbidden: (): HttpError => new HttpError(403, 'forbidden', 'You do not have permission to do this.'),
  notFound: (message = 'Not found.'): HttpError => new HttpError(404, 'not_found', message),
  conflict: (code: string, message: string): HttpError => new HttpError(409, code, message),
  rateLimited: (retryAfterSeconds: number): HttpError =>
    new HttpError(429, 'rate_limited', 'Too many attempts. Try again later.', {}, { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) }),
  overloaded: (retryAfterSeconds: number): HttpError =>
    new HttpError(503, 'overloaded', 'The server is busy. Try again in a few seconds.', {}, { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) }),
};

export interface ErrorBody {
  error: string;
  message: string;
  [key: string]: unknown;
}

export function sendError(reply: FastifyReply, err: HttpError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.code(err.statusCode).send({ error: err.code, message: err.message, ...err.extra } satisfies ErrorBody);
}

// Fastify's own client errors, by their codes, mapped to ours.
const FASTIFY_CODES: Record<string, [number, string, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large', 'The request body is too large.'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'Send the body as application/json.'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_request', 'The request body is not valid.'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_request', 'The request body is empty.'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'invalid_request', 'The request body is not valid JSON.'],
  FST_ERR_CTP_EMPTY_TYPE: [415, 'unsupported_media_type', 'Send the body as application/json.'],
  FST_ERR_CTP_INVALID_TYPE: [415, 'unsupported_media_type', 'Send the body as application/json.'],
};

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | HttpError | Error, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    if (err instanceof BusyError) return sendError(reply, errors.overloaded(err.retryAfterSeconds));
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
      return sendError(reply, errors.invalidRequest('Some fields are not valid.', fields));
    }
    const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
    if (mapped) return sendError(reply, new HttpError(mapped[0], mapped[1], mapped[2]));
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      if (fe.statusCode === 429) return sendError(reply, errors.rateLimited(60));
      return sendError(reply, new HttpError(fe.statusCode, fe.statusCode === 404 ? 'not_found' : 'invalid_request', 'The request is not valid.'));
    }
    // `req` goes through the logger's serializer, which keeps the path and redacts every query value.
    request.log.error({ err, req: request }, 'unhandled error');
    // No detail ever leaves the server on a 5xx.
    return reply.code(500).send({ error: 'internal_error', message: 'Something went wrong on our side.' } satisfies ErrorBody);
  });
}
