import type { FastifyInstance } from 'fastify';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { AppDeps } from '../deps.js';
import { auditLabel, recordAudit } from '../audit/audit.js';
import { notFound, rateLimited } from '../errors.js';
import { AUTH_BODY_LIMIT_BYTES, errorSchema, idParams, noContent } from '../http/schemas.js';
import { sendNoContent } from '../http/replies.js';
import { actorOf } from '../accounts/access.js';
import { findUserById } from '../accounts/users-repo.js';
import {
  forgotPasswordAcceptedSchema,
  forgotPasswordBodySchema,
  resetPasswordBodySchema,
  resetTokenStatusSchema,
  verifyResetTokenBodySchema,
  type ForgotPasswordAccepted,
} from './api-schemas.js';
import { completeReset, requestPasswordReset, sendResetLink, verifyResetToken } from './service.js';

/** One body for every well-formed address: known, unknown, disabled or throttled. */
export const FORGOT_PASSWORD_ACCEPTED = {
  message: 'If an account uses this address, an email with a link to reset the password is on its way.',
} as const satisfies ForgotPasswordAccepted;

export const SEND_RESET_PER_ADMIN_PER_10_MINUTES = 20;

export async function recoveryRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  app.post(
    '/api/auth/forgot-password',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: { access: 'public' },
      schema: {
        tags: ['recovery'],
        body: forgotPasswordBodySchema,
        response: { 202: forgotPasswordAcceptedSchema, 400: errorSchema },
      },
    },
    async (request, reply) => {
      await requestPasswordReset(deps, request.body.email, request.ip);
      return reply.code(202).send(FORGOT_PASSWORD_ACCEPTED);
    },
  );

  app.post(
    '/api/auth/reset-password/verify',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: { access: 'public' },
      schema: {
        tags: ['recovery'],
        body: verifyResetTokenBodySchema,
        response: { 200: resetTokenStatusSchema, 400: errorSchema, 429: errorSchema },
      },
    },
    async (request) => ({ valid: true, ...(await verifyResetToken(deps, request.body.token, request.ip)) }),
  );

  app.post(
    '/api/auth/reset-password',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: { access: 'public' },
      schema: {
        tags: ['recovery'],
        body: resetPasswordBodySchema,
        response: { 204: noContent, 400: errorSchema, 429: errorSchema, 503: errorSchema },
      },
    },
    async (request, reply) => {
      await completeReset(deps, request.body, request.ip);
      return sendNoContent(reply, 204);
    },
  );

  app.post(
    '/api/users/:id/send-reset',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['users'],
        params: idParams,
        response: { 202: noContent, 404: errorSchema, 409: errorSchema, 429: errorSchema },
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
      return sendNoContent(reply, 202);
    },
  );
}
