// JSON-schema pieces every feature's routes share.

/** The body of every error answer: `{ error, message }` plus fields, reasons or a hint. */
export const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
  required: ['error', 'message'],
  additionalProperties: true,
} as const;

/** Sign-in, recovery and password routes take small bodies only. */
export const AUTH_BODY_LIMIT_BYTES = 8 * 1024;
