import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { AppDeps } from '../deps.js';
import { auditLabel as labelOf, recordAudit } from '../audit/audit.js';
import { invalidInput, rateLimited } from '../errors.js';
import { AUTH_BODY_LIMIT_BYTES, errorSchema, idParams, noContent } from '../http/schemas.js';
import { sendNoContent } from '../http/replies.js';
import { actorOf, currentSession } from './access.js';
import { invalidCredentials, signInLocked } from './errors.js';
import { parseEmail, parseUsername } from './identifiers.js';
import { cookieNames, revokeSession, revokeUserSessions, type SessionPolicy } from './sessions.js';
import { MAX_PASSWORD_LENGTH } from './policy.js';
import { verifyCurrentPassword } from './reauth.js';
import { MAX_CONSECUTIVE_LOGIN_FAILURES, changePassword, createUser, editUser, removeUser, signIn, unlockUser } from './service.js';
import { findUserById, listUsers, queryUsers, toUser, type UserChanges, type UserRow } from './users-repo.js';
import { forgetTempAdminPassword } from './first-admin.js';
import { parseNewUser } from './new-user.js';
import { rateLimitKeyOfIp } from '../limits/client-ip.js';
import {
  changePasswordBodySchema,
  createUserBodySchema,
  loginBodySchema,
  passwordPolicySchema,
  patchUserBodySchema,
  userEnvelopeSchema as userEnvelope,
  userListQuerySchema,
  userListSchema,
} from './api-schemas.js';

/** What a login becomes in the audit when it is not a well-formed email or username (a password typed in the wrong box, say). */
export const MALFORMED_LOGIN_MARKER = '(not an email or username)';

function cookieOptions(deps: AppDeps, expires: Date) {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'lax',
    secure: deps.config.publicUrl.protocol === 'https:',
    expires,
  } as const;
}

/** The login as the audit may keep it: only a well-formed email or username, never whatever was typed. */
export function auditedLogin(login: string): string {
  return parseEmail(login) !== null || parseUsername(login) !== null ? login.slice(0, 64) : MALFORMED_LOGIN_MARKER;
}

export interface AccountRoutesOptions {
  deps: AppDeps;
  /**
   * A user was created without a password: recovery sends them a set-password link. Passed in by
   * the app, so accounts, on which recovery builds, never imports recovery.
   */
  onCreatedWithoutPassword(user: UserRow, actorId: string | null): Promise<void>;
}

export async function accountRoutes(fastify: FastifyInstance, { deps, onCreatedWithoutPassword }: AccountRoutesOptions): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  const sessionPolicy: SessionPolicy = { idleMinutes: deps.config.sessionIdleMinutes, maxHours: deps.config.sessionMaxHours };
  const cookies = cookieNames(deps.config.publicUrl);
  const metaOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'] ?? null });
  const signedOut = (reply: FastifyReply) => reply.clearCookie(cookies.session, { path: '/', secure: deps.config.publicUrl.protocol === 'https:' });
  const audit = (input: Parameters<typeof recordAudit>[2]): Promise<void> => recordAudit(deps.db, deps.clock, input);

  app.post(
    '/api/auth/login',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: { access: 'public' },
      schema: {
        tags: ['auth'],
        body: loginBodySchema,
        response: { 200: userEnvelope, 401: errorSchema, 403: errorSchema, 429: errorSchema, 503: errorSchema },
      },
    },
    async (request, reply) => {
      const login = request.body.login.trim();
      const byIp = await deps.limiter.hit(`login:ip:${rateLimitKeyOfIp(request.ip)}`, deps.config.limits.loginPerIpPerMinute, 60);
      if (!byIp.allowed) throw rateLimited(byIp.retryAfterSeconds);
      const result = await signIn(deps, {
        login,
        password: request.body.password,
        deviceToken: request.cookies[cookies.device],
        session: { policy: sessionPolicy, meta: metaOf(request) },
      });
      if (result.outcome === 'wait') throw rateLimited(result.seconds);
      if (result.outcome !== 'signed_in') {
        await audit({ type: 'login_failed', ip: request.ip, outcome: 'failure', detail: { login: auditedLogin(login), ...(result.outcome === 'locked' ? { locked: true } : {}) } });
        if (result.outcome === 'locked') throw signInLocked();
        if (result.lockedNow !== undefined) {
          await audit({ type: 'account_locked', target: labelOf(result.lockedNow), ip: request.ip, outcome: 'success', detail: { failures: MAX_CONSECUTIVE_LOGIN_FAILURES } });
        }
        throw invalidCredentials();
      }
      const { user, session, device } = result;
      await audit({ type: 'login_succeeded', actor: labelOf(user), ip: request.ip, outcome: 'success' });
      reply.setCookie(cookies.session, session.token, cookieOptions(deps, session.expiresAt));
      reply.setCookie(cookies.device, device.token, cookieOptions(deps, device.expiresAt));
      return { user: toUser(user) };
    },
  );

  // The policy's numbers, so pages can give live feedback before the server refuses.
  app.get(
    '/api/auth/password-policy',
    {
      config: { access: 'public' },
      schema: {
        tags: ['auth'],
        response: { 200: passwordPolicySchema },
      },
    },
    async () => ({ minLength: deps.config.passwordMinLength, maxLength: MAX_PASSWORD_LENGTH }),
  );

  app.post('/api/auth/logout', { config: { access: 'public' }, schema: { tags: ['auth'], response: { 204: noContent } } }, async (request, reply) => {
    const token = request.cookies[cookies.session];
    if (token) await revokeSession(deps.db, token);
    signedOut(reply);
    return sendNoContent(reply, 204);
  });

  app.post(
    '/api/auth/logout-everywhere',
    { config: { access: 'session', allowWhilePasswordChangeRequired: true }, schema: { tags: ['auth'], response: { 204: noContent, 401: errorSchema } } },
    async (request, reply) => {
      const { user } = currentSession(request);
      await revokeUserSessions(deps.db, user.id);
      await audit({ type: 'signed_out_everywhere', actor: labelOf(user), target: labelOf(user), ip: request.ip, outcome: 'success' });
      signedOut(reply);
      return sendNoContent(reply, 204);
    },
  );

  app.get(
    '/api/auth/me',
    { config: { access: 'session', allowWhilePasswordChangeRequired: true }, schema: { tags: ['auth'], response: { 200: userEnvelope, 401: errorSchema } } },
    async (request) => ({ user: toUser(currentSession(request).user) }),
  );

  app.post(
    '/api/auth/change-password',
    {
      bodyLimit: AUTH_BODY_LIMIT_BYTES,
      config: { access: 'session', allowWhilePasswordChangeRequired: true },
      schema: {
        tags: ['auth'],
        body: changePasswordBodySchema,
        response: { 204: noContent, 400: errorSchema, 401: errorSchema, 429: errorSchema, 503: errorSchema },
      },
    },
    async (request, reply) => {
      const session = currentSession(request);
      await verifyCurrentPassword(deps, session, request.body.currentPassword, request.ip);
      const rotated = await changePassword(deps, session, request.body.newPassword, sessionPolicy, metaOf(request));
      reply.setCookie(cookies.session, rotated.token, cookieOptions(deps, rotated.expiresAt));
      await audit({ type: 'password_changed', actor: labelOf(session.user), target: labelOf(session.user), ip: request.ip, outcome: 'success' });
      // The generated first password has served its purpose: it must not outlive the change.
      if (session.user.must_change_password === 1) await forgetTempAdminPassword(deps);
      return sendNoContent(reply, 204);
    },
  );

  app.get(
    '/api/users',
    { config: { access: 'admin' }, schema: { tags: ['users'], querystring: userListQuerySchema, response: { 200: userListSchema, 400: errorSchema } } },
    async (request) => {
      const query = request.query;
      // No parameter: every user, oldest first, as before the list was paged.
      if (Object.keys(query).length === 0) {
        const users = (await listUsers(deps.db)).map(toUser);
        return { users, total: users.length };
      }
      const page = await queryUsers(deps.db, {
        ...(query.q === undefined ? {} : { q: query.q }),
        ...(query.role === undefined ? {} : { role: query.role }),
        ...(query.status === undefined ? {} : { status: query.status }),
        limit: query.limit === undefined ? USERS_PAGE_SIZE : Number(query.limit),
        ...(query.after === undefined ? {} : { after: decodeUserCursor(query.after) }),
      });
      const last = page.rows.at(-1);
      return {
        users: page.rows.map(toUser),
        total: page.total,
        ...(page.more && last !== undefined ? { nextCursor: encodeUserCursor(last) } : {}),
      };
    },
  );

  app.post(
    '/api/users',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['users'],
        body: createUserBodySchema,
        response: { 201: userEnvelope, 400: errorSchema, 409: errorSchema },
      },
    },
    async (request, reply) => {
      // One reading of a new user for this route and `gatehouse users create`.
      const parsed = parseNewUser(request.body);
      if (!parsed.ok) throw invalidInput(parsed.message, parsed.fields);
      const user = await createUser(deps, parsed.user);
      await audit({ type: 'user_created', actor: actorOf(request), target: labelOf(user), ip: request.ip, outcome: 'success', detail: { role: user.role } });
      if (parsed.user.password === null) {
        const row = await findUserById(deps.db, user.id);
        await onCreatedWithoutPassword(row!, request.session?.user.id ?? null);
      }
      return reply.code(201).send({ user });
    },
  );

  app.patch(
    '/api/users/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['users'],
        params: idParams,
        body: patchUserBodySchema,
        response: { 200: userEnvelope, 400: errorSchema, 404: errorSchema, 409: errorSchema },
      },
    },
    async (request) => {
      const body = request.body;
      const changes: UserChanges = {};
      const fields: Record<string, string> = {};
      if (body.name !== undefined) {
        changes.name = body.name.trim();
        if (changes.name.length === 0) fields.name = 'Required.';
      }
      if (body.email !== undefined) {
        changes.email = blank(body.email) ? null : parseEmail(body.email!);
        if (!blank(body.email) && changes.email === null) fields.email = 'Enter one email address, like name@example.com.';
      }
      if (body.role !== undefined) changes.role = body.role;
      if (body.disabled !== undefined) changes.disabled = body.disabled;
      if (Object.keys(fields).length > 0) throw invalidInput('Some fields are not valid.', fields);
      // An admin cannot change their own role or disable themselves (409 cannot_demote_self / cannot_disable_self).
      const user = await editUser(deps, request.params.id, changes, { actorId: currentSession(request).user.id });
      await audit({
        type: 'user_updated',
        actor: actorOf(request),
        target: labelOf(user),
        ip: request.ip,
        outcome: 'success',
        detail: { fields: Object.keys(changes) },
      });
      return { user };
    },
  );

  app.post(
    '/api/users/:id/unlock',
    { config: { access: 'admin' }, schema: { tags: ['users'], params: idParams, response: { 200: userEnvelope, 404: errorSchema } } },
    async (request) => {
      const user = await unlockUser(deps, request.params.id);
      await audit({ type: 'account_unlocked', actor: actorOf(request), target: labelOf(user), ip: request.ip, outcome: 'success' });
      return { user };
    },
  );

  app.delete(
    '/api/users/:id',
    { config: { access: 'admin' }, schema: { tags: ['users'], params: idParams, response: { 204: noContent, 404: errorSchema, 409: errorSchema } } },
    async (request, reply) => {
      const removed = await removeUser(deps, request.params.id, { actorId: currentSession(request).user.id });
      await audit({ type: 'user_deleted', actor: actorOf(request), target: labelOf(removed), ip: request.ip, outcome: 'success' });
      return sendNoContent(reply, 204);
    },
  );
}

/** The users page's size when `?limit=` is not given. */
export const USERS_PAGE_SIZE = 50;

/** The cursor of a page's last row: its name and id, as base64url JSON (opaque to clients). */
export function encodeUserCursor(row: Pick<UserRow, 'name' | 'id'>): string {
  return Buffer.from(JSON.stringify([row.name, row.id]), 'utf8').toString('base64url');
}

/** A cursor read back; anything else is a 400 invalid_request on `after`. */
export function decodeUserCursor(cursor: string): { name: string; id: string } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'string' || typeof value[1] !== 'string') {
    throw invalidInput('The cursor is not valid.', { after: 'Use the nextCursor of a previous answer.' });
  }
  return { name: value[0], id: value[1] };
}

function blank(value: string | null | undefined): boolean {
  return value === undefined || value === null || value.trim() === '';
}
