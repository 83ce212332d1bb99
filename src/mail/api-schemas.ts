// The shapes of the email settings, deliveries and dev mailbox API: each JSON schema is what Ajv
// checks and the OpenAPI document shows, and the one source of its TypeScript type (the routes'
// and the web app's). Plain data, no HTTP: the domain may take its types from here.
import type { FromSchema } from 'json-schema-to-ts';

/** Where reset emails go from: secret *names* only, never their values. */
const settingsProperties = {
  host: { type: 'string' },
  port: { type: 'integer' },
  emailSecretName: { type: 'string' },
  /** null: a relay that takes mail without AUTH */
  passwordSecretName: { type: ['string', 'null'] },
  /** 465 → implicit TLS; any other port → STARTTLS required */
  sslEnabled: { type: 'boolean' },
} as const;

export const emailSettingsSchema = {
  type: 'object',
  properties: settingsProperties,
  required: ['host', 'port', 'emailSecretName', 'passwordSecretName', 'sslEnabled'],
  additionalProperties: false,
} as const;
export type EmailSettings = FromSchema<typeof emailSettingsSchema>;

/** What GET and PUT answer: the settings, whether they were ever saved, and whether each named secret resolves now. */
export const emailSettingsStateSchema = {
  type: 'object',
  properties: {
    ...settingsProperties,
    configured: { type: 'boolean' },
    /** password is null when no password secret is named */
    secretsResolve: {
      type: 'object',
      properties: { email: { type: 'boolean' }, password: { type: ['boolean', 'null'] } },
      required: ['email', 'password'],
      additionalProperties: false,
    },
    /** the secret store could not be read (outage, timeout) */
    secretsError: { type: 'string' },
  },
  required: ['host', 'port', 'emailSecretName', 'passwordSecretName', 'sslEnabled', 'configured', 'secretsResolve'],
  additionalProperties: false,
} as const;
export type EmailSettingsState = FromSchema<typeof emailSettingsStateSchema>;

/**
 * PUT /api/settings/email. Changing host, port or a secret name (and the first save) needs the
 * admin's `currentPassword`; a blank passwordSecretName means a relay without AUTH.
 */
export const emailSettingsBodySchema = {
  type: 'object',
  properties: {
    host: { type: 'string', maxLength: 255 },
    port: { type: 'integer' },
    emailSecretName: { type: 'string', maxLength: 200 },
    passwordSecretName: { type: ['string', 'null'], maxLength: 200 },
    sslEnabled: { type: 'boolean' },
    currentPassword: { type: 'string', maxLength: 1024 },
  },
  required: ['host', 'port', 'emailSecretName', 'passwordSecretName', 'sslEnabled'],
  additionalProperties: false,
} as const;
export type EmailSettingsBody = FromSchema<typeof emailSettingsBodySchema>;

export const testEmailBodySchema = {
  type: 'object',
  properties: { to: { type: 'string', maxLength: 320 } },
  required: ['to'],
  additionalProperties: false,
} as const;
export type TestEmailBody = FromSchema<typeof testEmailBodySchema>;

export const testStageOutcomeSchema = { type: 'string', enum: ['ok', 'failed', 'skipped'] } as const;
export type TestStageOutcome = FromSchema<typeof testStageOutcomeSchema>;

/** One step of the staged check: settings, secrets, dns, connect, tls, auth, send. */
export const testStageSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    outcome: testStageOutcomeSchema,
    detail: { type: 'string' },
    ms: { type: 'integer' },
  },
  required: ['name', 'outcome', 'detail', 'ms'],
  additionalProperties: false,
} as const;
export type TestStage = FromSchema<typeof testStageSchema>;

const stagesSchema = { type: 'array', items: testStageSchema } as const;

/** 200: every stage passed and the message was sent. */
export const testEmailPassedSchema = {
  type: 'object',
  properties: { ok: { type: 'boolean', const: true }, stages: stagesSchema },
  required: ['ok', 'stages'],
  additionalProperties: false,
} as const;

/** 502: the first failed stage, what it means (`message`) and what to do (`hint`). */
export const testEmailFailedSchema = {
  type: 'object',
  properties: { ok: { type: 'boolean', const: false }, error: { type: 'string' }, message: { type: 'string' }, hint: { type: 'string' }, stages: stagesSchema },
  required: ['ok', 'error', 'message', 'hint', 'stages'],
  additionalProperties: false,
} as const;
export type TestEmailResult = FromSchema<typeof testEmailPassedSchema> | FromSchema<typeof testEmailFailedSchema>;

/** One email Gatehouse sends (or tried to): never its body or token. */
export const deliverySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    /** when it was requested, ISO-8601 UTC */
    at: { type: 'string' },
    to: { type: ['string', 'null'] },
    kind: { type: 'string', enum: ['reset', 'set_password', 'password_changed'] },
    status: { type: 'string', enum: ['queued', 'sending', 'sent', 'retrying', 'failed', 'expired'] },
    attempts: { type: 'integer' },
    lastError: { type: ['string', 'null'] },
  },
  required: ['id', 'at', 'to', 'kind', 'status', 'attempts', 'lastError'],
  additionalProperties: false,
} as const;
export type Delivery = FromSchema<typeof deliverySchema>;

export const deliveryListSchema = {
  type: 'object',
  properties: { deliveries: { type: 'array', items: deliverySchema } },
  required: ['deliveries'],
  additionalProperties: false,
} as const;
export type DeliveryList = FromSchema<typeof deliveryListSchema>;

const devMessageSummaryProperties = {
  id: { type: 'string' },
  /** ISO-8601 UTC */
  at: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  subject: { type: 'string' },
} as const;

/** A message the dev mailbox captured (only outside production, only on the same machine). */
export const devMessageSummarySchema = {
  type: 'object',
  properties: devMessageSummaryProperties,
  required: ['id', 'at', 'from', 'to', 'subject'],
  additionalProperties: false,
} as const;
export type DevMessageSummary = FromSchema<typeof devMessageSummarySchema>;

export const devMessageListSchema = {
  type: 'object',
  properties: { messages: { type: 'array', items: devMessageSummarySchema } },
  required: ['messages'],
  additionalProperties: false,
} as const;
export type DevMessageList = FromSchema<typeof devMessageListSchema>;

export const devMessageSchema = {
  type: 'object',
  properties: {
    ...devMessageSummaryProperties,
    text: { type: 'string' },
    /** null for a text-only message */
    html: { type: ['string', 'null'] },
  },
  required: ['id', 'at', 'from', 'to', 'subject', 'text', 'html'],
  additionalProperties: false,
} as const;
export type DevMessage = FromSchema<typeof devMessageSchema>;

export const devMessageEnvelopeSchema = {
  type: 'object',
  properties: { message: devMessageSchema },
  required: ['message'],
  additionalProperties: false,
} as const;
export type DevMessageEnvelope = FromSchema<typeof devMessageEnvelopeSchema>;
