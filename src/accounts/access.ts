import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppDeps } from '../deps.js';
import { auditLabel, type AuditActor } from '../audit/audit.js';
import { forbidden, unauthenticated } from '../errors.js';
import { normalizedPath } from '../http/hygiene.js';
import { passwordChangeRequired } from './errors.js';
import { cookieNames, validateSession, type ValidSession } from './sessions.js';

// The session check of every request: who may call each route. The HTTP layer knows nothing of
// sessions; accounts owns them, and every feature's routes ask here who is calling.

/** Who may call a route; every route states it, and the default is the strictest. */
export type Access = 'public' | 'session' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /** me, logout and change-password stay usable while a password change is required */
    allowWhilePasswordChangeRequired?: boolean;
  }
  interface FastifyRequest {
    session: ValidSession | null;
  }
}

export function installAccessControl(app: FastifyInstance, deps: AppDeps): void {
  const policy = { idleMinutes: deps.config.sessionIdleMinutes, maxHours: deps.config.sessionMaxHours };
  const cookieName = cookieNames(deps.config.publicUrl).session;
  app.decorateRequest('session', null);
  // preValidation: who may call is decided before the body is judged, so an anonymous caller of an
  // admin route gets 401, not field-by-field validation errors.
  app.addHook('preValidation', async (request: FastifyRequest, _reply: FastifyReply) => {
    const config = request.routeOptions.config;
    // Unknown paths answer 404/405 to anyone; API routes that forget to say default to admin-only.
    if (request.is404) return;
    const access = config.access ?? (normalizedPath(request.url).startsWith('/api/') ? 'admin' : 'public');
    const token = request.cookies[cookieName];
    request.session = token ? await validateSession(deps, token, policy, { ip: request.ip, userAgent: request.headers['user-agent'] ?? null }) : null;
    if (access === 'public') return;
    // 401 is decided before the role: an anonymous caller learns nothing about admin routes.
    if (request.session === null) throw unauthenticated();
    if (request.session.user.must_change_password === 1 && config.allowWhilePasswordChangeRequired !== true) throw passwordChangeRequired();
    if (access === 'admin' && request.session.user.role !== 'system-admin') throw forbidden();
  });
}

export function currentSession(request: FastifyRequest): ValidSession {
  if (request.session === null) throw unauthenticated();
  return request.session;
}

/** Who is calling, as the audit records it; undefined for anonymous requests. */
export function actorOf(request: FastifyRequest): AuditActor | undefined {
  const user = request.session?.user;
  return user ? auditLabel(user) : undefined;
}
