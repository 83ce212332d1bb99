import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../deps.js';
import { auditLabel, recordAudit } from '../audit/audit.js';
import { notFound, rateLimited } from '../errors.js';
import { AUTH_BODY_LIMIT_BYTES, errorSchema } from '../http/schemas.js';
import { actorOf } from '../accounts/access.js';
import { findUserById } from '../accounts/users-repo.js';
import { completeReset, requestPasswordReset, sendResetLink, verifyResetToken } from './service.js';

/** One body for every well-formed address: known, unknown, disabled or throttled. */
export const FORGOT_PASSWORD_ACCEPTED = {
  message: 'If an account uses this address, an email with a link to reset the password is on its way.',
} as const;

export const SEND_RESET_PER_ADMIN_PER_10_MINUTES = 20;

const tokenField = { type: 'string', minLength: 1, maxLength: 200 } as const;
const passwordField = { type: 'string', minLength: 1, maxLength: 1024 } as const;

export async function recoveryRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  app.post<{ Body: { email: string } }>(
    '/api/auth/forgot-password',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: { access: 'public' },
      schema: {
        tags: ['recovery'],
        body: { type: 'object', properties: { email: { type: 'string', minLength: 1, maxLength: 320 } }, required: ['email'], additionalProperties: false },
        response: { 202: { type: 'object', properties: { message: { type: 'string' } }, required: ['message'] }, 400: errorSchema },
      },
    },
    async (request, reply) => {
      await requestPasswordReset(deps, request.body.email, request.ip);
      return reply.code(202).send(FORGOT_PASSWORD_ACCEPTED);
    },
  );

  app.post<{ Body: { token: string } }>(
    '/api/auth/reset-password/verify',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: { access: 'public' },
      schema: {
        tags: ['recovery'],
        body: { type: 'object', properties: { token: tokenField }, required: ['token'], additionalProperties: false },
        response: {
          200: { type: 'object', properties: { valid: { type: 'boolean' }, expiresAt: { type: 'string' } }, required: ['valid', 'expiresAt'] },
          400: errorSchema,
          429: errorSchema,
        },
      },
    },
    async (request) => ({ valid: true, ...(await verifyResetToken(deps, request.body.token, request.ip)) }),
  );

  app.post<{ Body: { token: string; password: string; confirmPassword: string } }>(
    '/api/auth/reset-password',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: { access: 'public' },
      schema: {
        tags: ['recovery'],
        body: {
          type: 'object',
          properties: { token: tokenField, password: passwordField, confirmPassword: passwordField },
          required: ['token', 'password', 'confirmPassword'],
          additionalProperties: false,
        },
        response: { 204: { type: 'null' }, 400: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      await completeReset(deps, request.body, request.ip);
      return reply.code(204).send();
    },
  );

  app.post<{ Params: { id: string } }>(
    '/api/users/:id/send-reset',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['users'],
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } }, required: ['id'] },
        response: { 202: { type: 'null' }, 404: errorSchema, 409: errorSchema, 429: errorSchema },
      },
    },
    async (request, reply) => {
      // Each call mails someone under the organisation's name: an admin session (or a script holding
      // one) must not turn it into a mail cannon against the users or the sender's reputation.
      const allowed = await deps.limiter.hit(`send-reset:${request.session?.user.id}`, SEND_RESET_PER_ADMIN_PER_10_MINUTES, 600);
      if (!allowed.allowed) throw rateLimited(allowed.retryAfterSeconds);
      const user = await findUserById(deps.db, request.params.id);
      if (user === undefined) throw notFound('No such user.');
      await sendResetLink(deps, user, 'reset', request.session?.user.id ?? null);
      await recordAudit(deps.db, deps.clock, { type: 'admin_reset_sent', actor: actorOf(request), target: auditLabel(user), ip: request.ip, outcome: 'success' });
      return reply.code(202).send();
    },
  );
}
