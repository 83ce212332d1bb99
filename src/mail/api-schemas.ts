// The shapes of the email settings, deliveries and dev mailbox API: each JSON schema is what Ajv
// checks and the OpenAPI document shows, and the one source of its TypeScript type (the routes'
// and the web app's). Plain data, no HTTP: the domain may take its types from here.
import type { FromSchema } from 'json-schema-to-ts';

const nullableString = { type: ['string', 'null'] } as const;

/** Where reset emails go from: secret *names* only, never their values. */
const settingsProperties = {
  /** smtp: SMTP with a password (or none, a relay); smtp-oauth2: SMTP with XOAUTH2 and an Entra ID token; graph: Microsoft Graph sendMail */
  transport: { type: 'string', enum: ['smtp', 'smtp-oauth2', 'graph'] },
  host: { type: 'string' },
  port: { type: 'integer' },
  /** off: plain SMTP with STARTTLS when offered (a password never goes in clear to a non-loopback host) */
  sslEnabled: { type: 'boolean' },
  /** with SSL enabled: auto (465 → implicit TLS, other ports → STARTTLS), starttls, or implicit (TLS from the first byte, any port) */
  tlsMode: { type: 'string', enum: ['auto', 'starttls', 'implicit'] },
  /** the sender mailbox as a plain address; null: the secret emailSecretName holds it */
  senderAddress: nullableString,
  emailSecretName: nullableString,
  /** smtp only; null: a relay that takes mail without AUTH */
  passwordSecretName: nullableString,
  /** smtp-oauth2 and graph: the Entra ID directory (tenant) id or domain */
  tenantId: nullableString,
  /** the app registration's client id; with managed identity, a user-assigned identity's (null: system-assigned) */
  clientId: nullableString,
  entraCredential: { type: ['string', 'null'], enum: ['client-secret', 'certificate', 'managed-identity', null] },
  /** the name of the secret holding the app's client secret */
  clientSecretName: nullableString,
  /** the name of the Key Vault certificate (PEM) holding the app's certificate and key */
  certificateName: nullableString,
} as const;

const settingsRequired = [
  'transport',
  'host',
  'port',
  'sslEnabled',
  'tlsMode',
  'senderAddress',
  'emailSecretName',
  'passwordSecretName',
  'tenantId',
  'clientId',
  'entraCredential',
  'clientSecretName',
  'certificateName',
] as const;

export const emailSettingsSchema = {
  type: 'object',
  properties: settingsProperties,
  required: settingsRequired,
  additionalProperties: false,
} as const;
export type EmailSettings = FromSchema<typeof emailSettingsSchema>;

/** Whether a named secret resolves now; null when the settings name none for it. */
const resolves = { type: ['boolean', 'null'] } as const;

/** What GET and PUT answer: the settings, whether they were ever saved, and whether each named secret resolves now. */
export const emailSettingsStateSchema = {
  type: 'object',
  properties: {
    ...settingsProperties,
    configured: { type: 'boolean' },
    /** each is null when the settings name no secret for it */
    secretsResolve: {
      type: 'object',
      properties: { email: resolves, password: resolves, clientSecret: resolves, certificate: resolves },
      required: ['email', 'password', 'clientSecret', 'certificate'],
      additionalProperties: false,
    },
    /** the secret store could not be read (outage, timeout) */
    secretsError: { type: 'string' },
    /** PUT only: what keeps the saved settings from sending (a named secret not found, the store unreadable), each with what to do */
    warnings: { type: 'array', items: { type: 'string' } },
  },
  required: [...settingsRequired, 'configured', 'secretsResolve'],
  additionalProperties: false,
} as const;
export type EmailSettingsState = FromSchema<typeof emailSettingsStateSchema>;

const bodyString = (maxLength: number) => ({ type: ['string', 'null'], maxLength }) as const;

/**
 * PUT /api/settings/email: the whole form. A field left out takes its default (transport smtp,
 * port 587, SSL on, tlsMode auto, the rest empty), so a client written before the transport
 * choice keeps working. Changing where mail goes or with which credentials (and the first save)
 * needs the admin's `currentPassword`; a blank secret name or address counts as none.
 */
export const emailSettingsBodySchema = {
  type: 'object',
  properties: {
    transport: settingsProperties.transport,
    host: { type: 'string', maxLength: 255 },
    port: { type: 'integer' },
    sslEnabled: { type: 'boolean' },
    tlsMode: settingsProperties.tlsMode,
    senderAddress: bodyString(320),
    emailSecretName: bodyString(200),
    passwordSecretName: bodyString(200),
    tenantId: bodyString(255),
    clientId: bodyString(100),
    entraCredential: settingsProperties.entraCredential,
    clientSecretName: bodyString(200),
    certificateName: bodyString(200),
    currentPassword: { type: 'string', maxLength: 1024 },
  },
  additionalProperties: false,
} as const;
export type EmailSettingsBody = FromSchema<typeof emailSettingsBodySchema>;

/**
 * POST /api/settings/email/test: `to`, and optionally `settings` — the form's values, saved or not,
 * in the PUT body's shape. Without `settings` the saved ones are checked. Settings that differ from
 * the saved ones in where mail goes need `settings.currentPassword`, as a save does: the check
 * sends the stored secrets wherever they point.
 */
export const testEmailBodySchema = {
  type: 'object',
  properties: { to: { type: 'string', maxLength: 320 }, settings: emailSettingsBodySchema },
  required: ['to'],
  additionalProperties: false,
} as const;
export type TestEmailBody = FromSchema<typeof testEmailBodySchema>;

export const testStageOutcomeSchema = { type: 'string', enum: ['ok', 'failed', 'skipped'] } as const;
export type TestStageOutcome = FromSchema<typeof testStageOutcomeSchema>;

/** One step of the staged check: settings, secrets, then the transport's (token, dns, connect, tls, auth, send). */
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
    /** where it went (sent) or was last tried: the dev mailbox, or the mail server by transport; null: not tried yet, or sent before this was recorded */
    via: { type: ['string', 'null'], enum: ['dev-mailbox', 'smtp', 'smtp-oauth2', 'graph', null] },
  },
  required: ['id', 'at', 'to', 'kind', 'status', 'attempts', 'lastError', 'via'],
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

/**
 * GET/PUT /api/settings/delivery: where every email goes — the dev mailbox on this machine or the
 * mail server of the saved email settings — and whether an admin may switch it here.
 */
export const deliveryTargetStateSchema = {
  type: 'object',
  properties: {
    /** where mail goes now */
    target: { type: 'string', enum: ['dev-mailbox', 'server'] },
    /** what an admin chose; null: never chosen (the dev mailbox until email settings are first saved, then the server) */
    chosen: { type: ['string', 'null'], enum: ['dev-mailbox', 'server', null] },
    /** null: an admin may switch; forced-dev-mailbox: MAIL_DEV_INBOX=true; no-dev-mailbox: production or MAIL_DEV_INBOX=false */
    lockedBy: { type: ['string', 'null'], enum: ['forced-dev-mailbox', 'no-dev-mailbox', null] },
    /** whether the dev mailbox runs in this server */
    devMailbox: { type: 'boolean' },
    /** whether email settings are saved (switching to the server needs them) */
    serverConfigured: { type: 'boolean' },
  },
  required: ['target', 'chosen', 'lockedBy', 'devMailbox', 'serverConfigured'],
  additionalProperties: false,
} as const;
export type DeliveryTargetState = FromSchema<typeof deliveryTargetStateSchema>;

export const deliveryTargetBodySchema = {
  type: 'object',
  properties: { target: { type: 'string', enum: ['dev-mailbox', 'server'] } },
  required: ['target'],
  additionalProperties: false,
} as const;
export type DeliveryTargetBody = FromSchema<typeof deliveryTargetBodySchema>;

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
