import type { FastifyInstance } from 'fastify';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { AppDeps } from '../deps.js';
import { auditLabel as labelOf, recordAudit } from '../audit/audit.js';
import { errorSchema, noContent } from '../http/schemas.js';
import { sendNoContent } from '../http/replies.js';
import { currentSession } from './access.js';
import { accountSessionListSchema, accountSessionParams, patchAccountBodySchema } from './account-schemas.js';
import { listOwnSessions, renameSelf, signOutOtherSessions, signOutOwnSession } from './account-service.js';
import { userEnvelopeSchema } from './api-schemas.js';
import { cookieNames } from './sessions.js';

/**
 * "My account": every signed-in user's own sessions and name. Access 'session' without
 * allowWhilePasswordChangeRequired: someone who must change their password does that first (403).
 */
export async function myAccountRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  const cookies = cookieNames(deps.config.publicUrl);
  const audit = (input: Parameters<typeof recordAudit>[2]): Promise<void> => recordAudit(deps.db, deps.clock, input);
  const errors = { 401: errorSchema, 403: errorSchema };

  app.get(
    '/api/account/sessions',
    { config: { access: 'session' }, schema: { tags: ['account'], response: { 200: accountSessionListSchema, ...errors } } },
    async (request) => ({ sessions: await listOwnSessions(deps, currentSession(request)) }),
  );

  app.delete(
    '/api/account/sessions/:id',
    {
      config: { access: 'session' },
      schema: { tags: ['account'], params: accountSessionParams, response: { 204: noContent, 404: errorSchema, ...errors } },
    },
    async (request, reply) => {
      const session = currentSession(request);
      const target = await signOutOwnSession(deps, session, request.params.id);
      await audit({
        type: 'session_signed_out',
        actor: labelOf(session.user),
        target: labelOf(session.user),
        ip: request.ip,
        outcome: 'success',
        detail: { device: target.device, current: target.current },
      });
      if (target.current) reply.clearCookie(cookies.session, { path: '/', secure: deps.config.publicUrl.protocol === 'https:' });
      return sendNoContent(reply, 204);
    },
  );

  app.post(
    '/api/account/sign-out-others',
    { config: { access: 'session' }, schema: { tags: ['account'], response: { 204: noContent, ...errors } } },
    async (request, reply) => {
      const session = currentSession(request);
      const count = await signOutOtherSessions(deps, session);
      await audit({ type: 'signed_out_other_sessions', actor: labelOf(session.user), target: labelOf(session.user), ip: request.ip, outcome: 'success', detail: { sessions: count } });
      return sendNoContent(reply, 204);
    },
  );

  app.patch(
    '/api/account',
    {
      config: { access: 'session' },
      schema: { tags: ['account'], body: patchAccountBodySchema, response: { 200: userEnvelopeSchema, 400: errorSchema, ...errors } },
    },
    async (request) => {
      const session = currentSession(request);
      const user = await renameSelf(deps, session, request.body.name);
      await audit({ type: 'user_updated', actor: labelOf(session.user), target: labelOf(session.user), ip: request.ip, outcome: 'success', detail: { fields: ['name'], self: true } });
      return { user };
    },
  );
}
