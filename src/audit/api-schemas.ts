// The shape of the audit API: the JSON schema is what the OpenAPI document shows and the
// serializer writes, and the one source of its TypeScript type (listAudit's and the web app's).
import type { FromSchema } from 'json-schema-to-ts';

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
