// The shape of the audit API: the JSON schema is what the OpenAPI document shows and the
// serializer writes, and the one source of its TypeScript type (listAudit's and the web app's).
import type { FromSchema } from 'json-schema-to-ts';
import { pageLimitSchema } from '../http/schemas.js';

/**
 * Every event type the log records, in the order the Audit page offers them. The filter refuses
 * any other; a new event type is added here (and gets a label on the Audit page, which the web
 * app's type check demands).
 */
export const AUDIT_TYPES = [
  'login_succeeded',
  'login_failed',
  'password_changed',
  'password_check_failed',
  'account_locked',
  'account_unlocked',
  'signed_out_everywhere',
  'session_signed_out',
  'signed_out_other_sessions',
  'user_created',
  'user_updated',
  'user_deleted',
  'admin_bootstrapped',
  'reset_requested',
  'reset_email_sent',
  'reset_email_failed',
  'email_given_up',
  'reset_completed',
  'reset_refused',
  'admin_reset_sent',
  'settings_changed',
  'email_test_sent',
] as const;
export type AuditType = (typeof AUDIT_TYPES)[number];

export const AUDIT_OUTCOMES = ['success', 'failure'] as const;
export type AuditOutcome = (typeof AUDIT_OUTCOMES)[number];

/**
 * The filters GET /api/audit and GET /api/audit/export.csv share. Checked further by
 * parseAuditFilter (known types, real UTC times, from before to).
 */
export const auditFilterProperties = {
  /** one or several event types: repeated (`type=a&type=b`) or comma-separated (`type=a,b`) */
  type: {
    anyOf: [
      { type: 'string', minLength: 1, maxLength: 1000 },
      { type: 'array', items: { type: 'string', minLength: 1, maxLength: 1000 }, minItems: 1, maxItems: 50 },
    ],
  },
  outcome: { type: 'string', enum: AUDIT_OUTCOMES },
  /** a user's id (actor or target), or part of the recorded label, of a current user's name, email or username, or of a failed sign-in's login */
  user: { type: 'string', minLength: 1, maxLength: 200 },
  /** ISO-8601 UTC, e.g. 2026-03-01T12:00:00Z: events at or after it */
  from: { type: 'string', minLength: 1, maxLength: 40 },
  /** ISO-8601 UTC: events at or before it */
  to: { type: 'string', minLength: 1, maxLength: 40 },
} as const;

export const auditListQuerySchema = {
  type: 'object',
  properties: {
    limit: pageLimitSchema,
    before: { type: 'string', pattern: '^[1-9]\\d{0,15}$' },
    ...auditFilterProperties,
  },
  additionalProperties: false,
} as const;
export type AuditListQuery = FromSchema<typeof auditListQuerySchema>;

export const auditExportQuerySchema = {
  type: 'object',
  properties: auditFilterProperties,
  additionalProperties: false,
} as const;
export type AuditExportQuery = FromSchema<typeof auditExportQuerySchema>;

/** Who acted or was acted on, as the event recorded them; both null for an anonymous caller. */
export const auditPartySchema = {
  type: 'object',
  properties: { id: { type: ['string', 'null'] }, label: { type: ['string', 'null'] } },
  required: ['id', 'label'],
  additionalProperties: false,
} as const;
export type AuditParty = FromSchema<typeof auditPartySchema>;

/** One security event; `detail` never holds a secret, token or password. */
export const auditEventSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    /** ISO-8601 UTC */
    at: { type: 'string' },
    type: { type: 'string' },
    actor: { ...auditPartySchema, type: ['object', 'null'] },
    target: { ...auditPartySchema, type: ['object', 'null'] },
    ip: { type: ['string', 'null'] },
    outcome: { type: 'string', enum: ['success', 'failure'] },
    detail: { type: ['object', 'null'], additionalProperties: true },
  },
  required: ['id', 'at', 'type', 'actor', 'target', 'ip', 'outcome', 'detail'],
  additionalProperties: false,
} as const;
export type AuditEvent = FromSchema<typeof auditEventSchema>;

export const auditEventListSchema = {
  type: 'object',
  properties: { events: { type: 'array', items: auditEventSchema } },
  required: ['events'],
  additionalProperties: false,
} as const;
export type AuditEventList = FromSchema<typeof auditEventListSchema>;
