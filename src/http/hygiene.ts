import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';
import type { Config } from '../config.js';
import { publicOrigins } from '../config.js';
import { invalidInput, notFound } from '../errors.js';
import { httpError, sendError } from './errors.js';

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
      return sendError(reply, httpError('forbidden_origin', 'This request came from another site.'));
    }
  });
}

/**
 * The security headers of every answer, worked out once by helmet from our options. (Its Fastify
 * plugin builds the whole middleware again for every request: 9% of a forgot-password's CPU.)
 */
function securityHeaders(config: Config): ReadonlyArray<readonly [string, string]> {
  const headers = new Map<string, string>();
  const collect = {
    setHeader: (name: string, value: string | number) => headers.set(name.toLowerCase(), String(value)),
    removeHeader: (name: string) => headers.delete(name.toLowerCase()),
  };
  helmet({
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
  })(undefined as unknown as IncomingMessage, collect as unknown as ServerResponse, () => {});
  return [...headers];
}

export function installSecurityHeaders(app: FastifyInstance, config: Config): void {
  const headers = securityHeaders(config);
  // On the raw response, as helmet does: they stay on every answer, errors included; a route may replace one (a CSP of its own).
  app.addHook('onRequest', (request, reply, done) => {
    for (const [name, value] of headers) reply.raw.setHeader(name, value);
    done();
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
    const isNotFound = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
    sendError(reply, isNotFound ? notFound() : invalidInput('The request URL is not valid.'));
  };
}

/** C0 controls (NUL, tab and line breaks included), DEL and the C1 controls. */
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Every string a route is given — path parameters, query values, and the JSON body's keys and
 * values at any depth — is refused with 400 when it holds a control character. No field of ours
 * needs one, and PostgreSQL rejects a NUL in text with an error (a 500 that would skip the
 * failure count and the audit) where SQLite stores it. One hook, after access is decided (an
 * anonymous caller of an admin route still gets 401) and before any schema or handler sees it.
 */
export function installControlCharacterCheck(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    // The not-found handler touches no storage, and serves the reset page whatever its query.
    if (request.is404) return;
    const found = [request.params, request.query, request.body].flatMap(fieldsWithControlCharacters);
    if (found.length === 0) return;
    // fromEntries defines each name as its own property: `fields.__proto__ = …` would be dropped.
    throw invalidInput('Remove control characters.', Object.fromEntries(found.map((field) => [field, 'Remove control characters.'])));
  });
}

/** The dotted path of every string (or object key) holding a control character; '(body)' for a bare string. */
export function fieldsWithControlCharacters(input: unknown): string[] {
  const found: string[] = [];
  // Iterative: a body may nest thousands of levels deep within the size limit.
  const pending: [unknown, string][] = [[input, '']];
  while (pending.length > 0) {
    const [value, path] = pending.pop()!;
    if (typeof value === 'string') {
      if (CONTROL_CHARACTER.test(value)) found.push(path === '' ? '(body)' : path);
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => pending.push([item, path === '' ? String(i) : `${path}.${i}`]));
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        const name = path === '' ? printable(key) : `${path}.${printable(key)}`;
        if (CONTROL_CHARACTER.test(key)) found.push(name);
        else pending.push([item, name]);
      }
    }
  }
  return found;
}

/** A key as it may be named back to the client: control characters written as \uXXXX. */
function printable(key: string): string {
  return key.replace(CONTROL_CHARACTERS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
