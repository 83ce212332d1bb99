import fs from 'node:fs';
import path from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import underPressure from '@fastify/under-pressure';
import type { AppDeps } from './deps.js';
import type { TrustProxy } from './config.js';
import { accountRoutes } from './accounts/routes.js';
import { auditRoutes } from './audit/routes.js';
import { myAccountRoutes } from './accounts/account-routes.js';
import { recoveryRoutes } from './recovery/routes.js';
import { sendResetLink } from './recovery/service.js';
import { mailRoutes } from './mail/routes.js';
import { installAccessControl } from './accounts/access.js';
import { DomainError, notFound, overloaded } from './errors.js';
import { httpError, installErrorHandler, sendError } from './http/errors.js';
import { forwardedForWithoutPorts } from './limits/client-ip.js';
import { healthRoutes } from './http/health.js';
import { brandPageHtml } from './http/page-html.js';
import { cookieNames } from './accounts/sessions.js';
import { frameworkErrorHandler, installControlCharacterCheck, installOriginCheck, installSecurityHeaders } from './http/hygiene.js';
import { REQUEST_COMPLETED } from './logger.js';

/** The single-page app's routes; any other path is a 404 (the app still renders it). */
export const PAGES = ['/', '/login', '/forgot-password', '/reset-password', '/change-password', '/users', '/settings', '/mail', '/audit', '/account', '/dev/mailbox'];

/** Builds the whole HTTP app from its dependencies. Never reads the environment, never listens. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    logController: new RequestLinesAtDebug(),
    trustProxy: trustProxyOption(deps.config.trustProxy),
    frameworkErrors: frameworkErrorHandler(deps.config),
    bodyLimit: 64 * 1024,
    // Our own 503 below, in our error shape, rather than Fastify's.
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 200 },
    // Strict schemas: no coercion ("1" is not a number, ["x"] is not a string), unknown fields refused.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: true } },
  });

  // JSON is the only body type; anything else is a 415.
  app.removeAllContentTypeParsers();
  // Fastify's own parser: a body holding __proto__ or constructor.prototype is refused with 400,
  // not quietly cleaned (an attacker probing for prototype pollution learns it is refused).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  // Every API path and method, so a known path called with the wrong method gets 405 rather than 404.
  const apiRoutes: ApiRoute[] = [];
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api/')) return;
    const pattern = new RegExp(`^${route.url.replace(/:[^/]+/g, '[^/]+')}$`);
    for (const method of [route.method].flat()) if (method !== 'HEAD') apiRoutes.push({ pattern, method });
  });

  installErrorHandler(app);
  if (deps.config.trustProxy !== false) {
    // Before anything reads request.ip (Fastify derives it from the header on every read).
    app.addHook('onRequest', async (request) => {
      const header = request.raw.headers['x-forwarded-for'];
      if (typeof header === 'string' && header.includes(':')) request.raw.headers['x-forwarded-for'] = forwardedForWithoutPorts(header);
    });
  }
  // First, so every answer carries them, including the 503 and 403 that the next hooks send.
  installSecurityHeaders(app, deps.config);
  // Shutting down (SIGTERM): the listening socket is closed, but a request can still arrive on a
  // keep-alive connection. It is refused at once, with the connection, so the client retries on
  // another instance; the requests already under way finish.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (_request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    return sendError(reply, new DomainError('shutting_down', 'The server is shutting down. Try again.', {}, 1));
  });
  // Load shedding: when the event loop lags this far behind, answer 503 at once instead of queueing more work.
  await app.register(underPressure, {
    maxEventLoopDelay: deps.loadShedding?.maxEventLoopDelayMs ?? 1000,
    // A window with no reading counts as infinite delay: sampling as often as the limit means only
    // a loop blocked for the whole limit sheds load, not one 100 ms turn.
    sampleInterval: deps.loadShedding?.sampleIntervalMs ?? 1000,
    pressureHandler: (_request, reply) => {
      sendError(reply, overloaded(5));
    },
  });
  installOriginCheck(app, deps.config);
  await app.register(cookie);
  installAccessControl(app, deps);
  // After access (401 before field errors), before every schema and handler.
  installControlCharacterCheck(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Gatehouse', version: '0.1.0', description: 'Sign-in, users and password recovery.' },
    },
  });
  app.get('/api/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());

  await app.register(healthRoutes, deps);
  await app.register(accountRoutes, {
    deps,
    onCreatedWithoutPassword: (user, actorId) => sendResetLink(deps, user, 'set_password', actorId),
  });
  await app.register(recoveryRoutes, deps);
  await app.register(mailRoutes, deps);
  await app.register(auditRoutes, deps);
  await app.register(myAccountRoutes, deps);
  await installWebApp(app, deps.webRoot, apiRoutes, deps.config);
  return app;
}

interface ApiRoute {
  pattern: RegExp;
  method: string;
}

async function installWebApp(app: FastifyInstance, webRoot: string | undefined, apiRoutes: ApiRoute[], config: AppDeps['config']): Promise<void> {
  const indexFile = webRoot === undefined ? undefined : path.join(webRoot, 'index.html');
  // The brand written in, and whether a session cookie came with the request (the app skips /api/auth/me without one).
  const indexHtml = indexFile !== undefined && fs.existsSync(indexFile) ? brandPageHtml(fs.readFileSync(indexFile, 'utf8'), config) : undefined;
  const sessionCookie = cookieNames(config.publicUrl).session;
  if (webRoot !== undefined && indexHtml !== undefined) {
    await app.register(fastifyStatic, {
      root: path.join(webRoot, 'assets'),
      prefix: '/assets/',
      wildcard: true,
      index: false,
      // File names carry a content hash: they never change, so they may be cached for good.
      immutable: true,
      maxAge: 31_536_000_000,
    });
  }

  app.setNotFoundHandler(async (request, reply) => {
    const urlPath = (request.url.split('?')[0] ?? '/').replace(/\/{2,}/g, '/');
    const normalized = urlPath.length > 1 ? urlPath.replace(/\/$/, '') : urlPath;
    const allowed = [...new Set(apiRoutes.filter((r) => r.pattern.test(normalized)).map((r) => r.method))];
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendError(reply, httpError('method_not_allowed', `Use ${allowed.join(' or ')} on this path.`));
    }
    const wantsPage = (request.method === 'GET' || request.method === 'HEAD') && !normalized.startsWith('/api/');
    if (wantsPage && indexHtml !== undefined) {
      // Pages are never cached: the reset page in particular must not be kept by a shared cache.
      return reply
        .code(PAGES.includes(normalized) ? 200 : 404)
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .send(request.cookies[sessionCookie] ? indexHtml.withSessionCookie : indexHtml.withoutSessionCookie);
    }
    return sendError(reply, notFound());
  });
}

/**
 * One line per answered request, at debug (LOG_LEVEL=debug shows it; info keeps the console for
 * what matters). Fastify's "incoming request" line moves to trace; a request that fails still
 * logs at error, and the error handler's own lines keep their levels.
 */
class RequestLinesAtDebug extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.trace({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.debug({ req: request, res: reply, responseTime: reply.elapsedTime }, REQUEST_COMPLETED);
  }
}

/** TRUST_PROXY as Fastify takes it. Fastify treats a bare number as "trust no one", so a hop count becomes a function. */
function trustProxyOption(value: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof value === 'number') return (_address, hop) => hop < value;
  return value;
}
