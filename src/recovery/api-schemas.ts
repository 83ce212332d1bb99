// The shapes of the password-recovery API: each JSON schema is what Ajv checks and the OpenAPI
// document shows, and the one source of its TypeScript type (the routes' and the web app's).
import type { FromSchema } from 'json-schema-to-ts';

const tokenField = { type: 'string', minLength: 1, maxLength: 200 } as const;
const passwordField = { type: 'string', minLength: 1, maxLength: 1024 } as const;

export const forgotPasswordBodySchema = {
  type: 'object',
  properties: { email: { type: 'string', minLength: 1, maxLength: 320 } },
  required: ['email'],
  additionalProperties: false,
} as const;
export type ForgotPasswordBody = FromSchema<typeof forgotPasswordBodySchema>;

/** The one answer to every well-formed address: known, unknown, disabled or throttled. */
export const forgotPasswordAcceptedSchema = {
  type: 'object',
  properties: { message: { type: 'string' } },
  required: ['message'],
  additionalProperties: false,
} as const;
export type ForgotPasswordAccepted = FromSchema<typeof forgotPasswordAcceptedSchema>;

export const verifyResetTokenBodySchema = {
  type: 'object',
  properties: { token: tokenField },
  required: ['token'],
  additionalProperties: false,
} as const;
export type VerifyResetTokenBody = FromSchema<typeof verifyResetTokenBodySchema>;

/** A live token: when it stops working (ISO-8601 UTC). A dead one is a 400, never `valid: false`. */
export const resetTokenStatusSchema = {
  type: 'object',
  properties: { valid: { type: 'boolean' }, expiresAt: { type: 'string' } },
  required: ['valid', 'expiresAt'],
  additionalProperties: false,
} as const;
export type ResetTokenStatus = FromSchema<typeof resetTokenStatusSchema>;

export const resetPasswordBodySchema = {
  type: 'object',
  properties: { token: tokenField, password: passwordField, confirmPassword: passwordField },
  required: ['token', 'password', 'confirmPassword'],
  additionalProperties: false,
} as const;
export type ResetPasswordBody = FromSchema<typeof resetPasswordBodySchema>;
