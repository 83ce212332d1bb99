// JSON-schema pieces every feature's routes share. Each schema is the one source of its type
// (json-schema-to-ts derives it at compile time; the schema objects reach Ajv and the OpenAPI
// document exactly as written). Plain data and types only: the web app may import its types.
import type { FromSchema } from 'json-schema-to-ts';

/** The body of every error answer: `{ error, message }` plus fields, reasons or a hint. */
export const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
  required: ['error', 'message'],
  additionalProperties: true,
} as const;
export type ErrorBody = FromSchema<typeof errorSchema>;

/** The `:id` of a user, a delivery or a captured message. */
export const idParams = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['id'],
} as const;
export type IdParams = FromSchema<typeof idParams>;

/** A bodiless answer (204, 202): end it with sendNoContent (replies.ts). */
export const noContent = { type: 'null' } as const;

/** `?limit=` of a paged list: 1 to 999 as digits, no coercion (the route caps it). */
export const pageLimitSchema = { type: 'string', pattern: '^(?:[1-9]\\d{0,2})$' } as const;

/** Sign-in, recovery and password routes take small bodies only. */
export const AUTH_BODY_LIMIT_BYTES = 8 * 1024;
