// The shapes of the "My account" API (GET/DELETE /api/account/sessions…, PATCH /api/account):
// what Ajv checks, what the OpenAPI document shows, and the TypeScript types of the routes and
// the web app. Plain data, no HTTP.
import type { FromSchema } from 'json-schema-to-ts';

/** One of the caller's sessions: never its token or the token's hash. */
export const accountSessionSchema = {
  type: 'object',
  properties: {
    /** an opaque random id, only good for signing this session out */
    id: { type: 'string' },
    /** "Firefox on Windows", "Chrome on Android", "Unknown browser" */
    device: { type: 'string' },
    /** the address last seen (TRUST_PROXY honoured); an IPv6 client as its /64; null when unknown */
    ip: { type: ['string', 'null'] },
    /** "This device’s network" for loopback and private addresses; null otherwise (no GeoIP) */
    place: { type: ['string', 'null'] },
    /** ISO-8601 UTC */
    createdAt: { type: 'string' },
    /** ISO-8601 UTC; refreshed at most once a minute */
    lastSeenAt: { type: 'string' },
    /** the session that asked ("This browser") */
    current: { type: 'boolean' },
  },
  required: ['id', 'device', 'ip', 'place', 'createdAt', 'lastSeenAt', 'current'],
  additionalProperties: false,
} as const;
export type AccountSession = FromSchema<typeof accountSessionSchema>;

export const accountSessionListSchema = {
  type: 'object',
  properties: { sessions: { type: 'array', items: accountSessionSchema } },
  required: ['sessions'],
  additionalProperties: false,
} as const;
export type AccountSessionList = FromSchema<typeof accountSessionListSchema>;

/** `:id` of one of the caller's sessions. */
export const accountSessionParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['id'],
} as const;

/** What a user may change about themselves: their name (trimmed, not blank, as on the Users page). */
export const patchAccountBodySchema = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1, maxLength: 200 } },
  required: ['name'],
  additionalProperties: false,
} as const;
export type PatchAccountBody = FromSchema<typeof patchAccountBodySchema>;
