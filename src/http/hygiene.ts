import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import type { Config } from '../config.js';
import { publicOrigins } from '../config.js';
import { HttpError, sendError } from './errors.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cross-site request refusal for every state-changing request: a present Origin must be ours
 * (`Origin: null` is not), and browsers that say Sec-Fetch-Site: cross-site are refused too.
 */
export function installOriginCheck(app: FastifyInstance, config: Config): void {
  const allowed = new Set(publicOrigins(config));
  app.addHook('onRequest', async (request, reply) => {
    if (SAFE_METHODS.has(request.method)) return;
    const origin = request.headers.origin;
    const site = request.headers['sec-fetch-site'];
    if ((origin !== undefined && !allowed.has(origin)) || site === 'cross-site') {
      return sendError(reply, new HttpError(403, 'forbidden_origin', 'This request came from another site.'));
    }
  });
}

export async function installSecurityHeaders(app: FastifyInstance, config: Config): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
    // Reset links carry their token in the fragment; no page of ours ever sends a Referer.
    referrerPolicy: { policy: 'no-referrer' },
    hsts: config.publicUrl.protocol === 'https:' ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginEmbedderPolicy: false,
  });
  app.addHook('onSend', async (request, reply, payload) => {
    // The path as routed: //api/auth/me reaches the same handler and must not be cacheable either.
    if (normalizedPath(request.url).startsWith('/api/')) reply.header('cache-control', 'no-store');
    return payload;
  });
}

/** The path with repeated slashes folded, as the router matches it (ignoreDuplicateSlashes). */
export function normalizedPath(url: string): string {
  return (url.split('?')[0] ?? '/').replace(/\/{2,}/g, '/');
}

/**
 * Fastify answers a malformed URL or an over-long path parameter before any hook runs: our own
 * error, with the headers helmet would have set, never Fastify's body echoing the path.
 */
export function frameworkErrorHandler(config: Config) {
  return (error: { code?: string }, _request: FastifyRequest, reply: FastifyReply): void => {
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    if (config.publicUrl.protocol === 'https:') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
    const notFound = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
    sendError(reply, notFound ? new HttpError(404, 'not_found', 'Not found.') : new HttpError(400, 'invalid_request', 'The request URL is not valid.'));
  };
}
