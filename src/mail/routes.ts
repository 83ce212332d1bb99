import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { AppDeps } from '../deps.js';
import { recordAudit } from '../audit/audit.js';
import { actorOf, currentSession } from '../accounts/access.js';
import { maskEmail, parseEmail } from '../accounts/identifiers.js';
import { invalidInput, notFound, rateLimited } from '../errors.js';
import { errorSchema, idParams, pageLimitSchema } from '../http/schemas.js';
import { verifyCurrentPassword } from '../accounts/reauth.js';
import { SecretStoreUnavailableError, type SecretStore } from '../secrets/store.js';
import {
  deliveryListSchema,
  deliveryTargetBodySchema,
  deliveryTargetStateSchema,
  devMessageEnvelopeSchema,
  devMessageListSchema,
  emailSettingsBodySchema,
  emailSettingsStateSchema,
  testEmailBodySchema,
  testEmailFailedSchema,
  testEmailPassedSchema,
  type EmailSettingsBody,
  type EmailSettingsState,
} from './api-schemas.js';
import { deliveryTargetLocked, emailSettingsNotSaved, reauthenticationRequired } from './errors.js';
import { effectiveDeliveryTarget, findDeliveryTarget, saveDeliveryTarget, type DeliveryTargetState } from './delivery-target.js';
import type { DevInbox } from './dev-inbox.js';
import { diagnoseEmail, diagnoseOptions } from './diagnose.js';
import { listDeliveries } from './outbox.js';
import {
  DEFAULT_EMAIL_SETTINGS,
  findEmailSettings,
  isMailSecretName,
  REAUTHENTICATED_FIELDS,
  saveEmailSettings,
  validateEmailSettings,
  type EmailSettings,
} from './settings.js';

const SECRET_CHECK_TIMEOUT_MS = 5000;

/** The mail shown in the dev mailbox's iframe: no script, no network, its own sandbox. */
export const DEV_MAIL_HTML_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation";

/** Whether each named secret resolves now, and why the store could not say. */
type SecretsReport = Pick<EmailSettingsState, 'secretsResolve' | 'secretsError'>;

export async function mailRoutes(fastify: FastifyInstance, deps: AppDeps): Promise<void> {
  const app = fastify.withTypeProvider<JsonSchemaToTsProvider>();
  const audit = (input: Parameters<typeof recordAudit>[2]): Promise<void> => recordAudit(deps.db, deps.clock, input);

  app.get('/api/settings/email', { config: { access: 'admin' }, schema: { tags: ['settings'], response: { 200: emailSettingsStateSchema } } }, async () => {
    const saved = await findEmailSettings(deps.db);
    const settings = saved ?? DEFAULT_EMAIL_SETTINGS;
    return { ...settings, configured: saved !== undefined, ...(await checkSecrets(deps, settings)) };
  });

  app.put(
    '/api/settings/email',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['settings'],
        body: emailSettingsBodySchema,
        response: { 200: emailSettingsStateSchema, 400: errorSchema, 401: errorSchema, 429: errorSchema, 503: errorSchema },
      },
    },
    async (request) => {
      const settings = validSettingsFromBody(deps, request.body);
      const previous = await findEmailSettings(deps.db);
      await reauthenticateIfMoved(deps, request, previous, settings, request.body.currentPassword);
      await saveEmailSettings(deps.db, deps.clock, settings, request.session?.user.id ?? null);
      // Names and addresses only: no field here holds a secret value.
      // A first save lists what it sets; fields it leaves empty are not news.
      const isChange = (k: keyof EmailSettings): boolean => (previous === undefined ? settings[k] !== null : previous[k] !== settings[k]);
      const changed = Object.fromEntries((Object.keys(settings) as (keyof EmailSettings)[]).filter(isChange).map((k) => [k, settings[k]]));
      await audit({ type: 'settings_changed', actor: actorOf(request), ip: request.ip, outcome: 'success', detail: { settings: 'email', changed } });
      const report = await checkSecrets(deps, settings);
      const warnings = secretWarnings(deps, settings, report);
      return { ...settings, configured: true, ...report, ...(warnings.length > 0 ? { warnings } : {}) };
    },
  );

  app.post(
    '/api/settings/email/test',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['settings'],
        body: testEmailBodySchema,
        response: { 200: testEmailPassedSchema, 400: errorSchema, 502: testEmailFailedSchema },
      },
    },
    async (request, reply) => {
      const to = parseEmail(request.body.to);
      if (to === null) throw invalidInput('Some fields are not valid.', { to: 'Enter one email address, like name@example.com.' });
      const saved = await findEmailSettings(deps.db);
      // Unsaved values from the form: validated as a save is, and as a save asks for the password
      // when they move mail elsewhere (the check sends the stored secrets wherever they point).
      let settings = saved;
      if (request.body.settings !== undefined) {
        settings = validSettingsFromBody(deps, request.body.settings);
        await reauthenticateIfMoved(deps, request, saved, settings, request.body.settings.currentPassword);
      }
      // Repeated failed AUTH can get the sending mailbox locked by the provider.
      const allowed = await deps.limiter.hit(`mail-test:${request.session?.user.id}`, 10, 600);
      if (!allowed.allowed) throw rateLimited(allowed.retryAfterSeconds);
      const result = await diagnoseEmail({ ...diagnoseOptions(deps.config), settings, secrets: deps.secrets, to });
      // The test sends mail under the organisation's name with the stored credentials, and connects
      // wherever the settings point: both belong in the trail.
      await audit({
        type: 'email_test_sent',
        actor: actorOf(request),
        ip: request.ip,
        outcome: result.ok ? 'success' : 'failure',
        detail: {
          result: result.ok ? 'ok' : result.error,
          to: maskEmail(to),
          ...(request.body.settings === undefined ? {} : { unsaved: true }),
          ...(settings === undefined ? {} : { transport: settings.transport, ...(settings.transport === 'graph' ? {} : { host: settings.host, port: settings.port }) }),
        },
      });
      if (result.ok) return result;
      return reply.code(502).send(result);
    },
  );

  app.get(
    '/api/settings/delivery',
    { config: { access: 'admin' }, schema: { tags: ['settings'], response: { 200: deliveryTargetStateSchema } } },
    async () => deliveryState(deps),
  );

  app.put(
    '/api/settings/delivery',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['settings'],
        body: deliveryTargetBodySchema,
        response: { 200: deliveryTargetStateSchema, 400: errorSchema, 409: errorSchema },
      },
    },
    async (request) => {
      const { target } = request.body;
      const state = await deliveryState(deps);
      if (state.lockedBy === 'forced-dev-mailbox') throw deliveryTargetLocked('MAIL_DEV_INBOX=true sends every email to the dev mailbox: unset it and restart to use your mail server.');
      if (state.lockedBy === 'no-dev-mailbox') {
        if (target === 'dev-mailbox') throw deliveryTargetLocked('The dev mailbox is off here (production, or MAIL_DEV_INBOX=false): mail goes to your mail server.');
        // Already the server: nothing to switch.
        return state;
      }
      if (target === 'server' && !state.serverConfigured) throw emailSettingsNotSaved();
      // Switching to the dev mailbox keeps mail on this machine; switching to the server sends it
      // with settings whose save already asked for the password: neither asks again.
      await saveDeliveryTarget(deps.db, deps.clock, target, request.session?.user.id ?? null);
      if (state.target !== target || state.chosen !== target) {
        await audit({
          type: 'settings_changed',
          actor: actorOf(request),
          ip: request.ip,
          outcome: 'success',
          detail: { settings: 'delivery', changed: { target } },
        });
      }
      return deliveryState(deps);
    },
  );

  app.get(
    '/api/mail/deliveries',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['mail'],
        querystring: {
          type: 'object',
          properties: {
            limit: pageLimitSchema,
            before: { type: 'string', pattern: '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$' },
          },
          additionalProperties: false,
        },
        response: { 200: deliveryListSchema },
      },
    },
    async (request) => {
      const limit = Math.min(200, Number(request.query.limit ?? 50));
      return { deliveries: await listDeliveries(deps.db, { limit, before: request.query.before }) };
    },
  );

  // The dev mailbox shows the reset links of every account: it answers only on the machine it
  // runs on, and looks exactly like a missing route to anyone else.
  const mailbox = (request: FastifyRequest): DevInbox => {
    if (deps.devInbox === undefined || !isLocalRequest(request, deps.config.publicUrl.hostname)) throw notFound();
    return deps.devInbox;
  };

  app.get(
    '/api/dev/mailbox',
    {
      config: { access: 'public' },
      schema: {
        tags: ['dev'],
        response: {
          200: devMessageListSchema,
          404: errorSchema,
        },
      },
    },
    async (request) => ({
      messages: mailbox(request)
        .list()
        .map(({ id, at, from, to, subject }) => ({ id, at, from, to, subject })),
    }),
  );

  app.get(
    '/api/dev/mailbox/:id',
    {
      config: { access: 'public' },
      schema: {
        tags: ['dev'],
        params: idParams,
        response: { 200: devMessageEnvelopeSchema, 404: errorSchema },
      },
    },
    async (request) => {
      const message = mailbox(request).find(request.params.id);
      if (message === undefined) throw notFound();
      return { message };
    },
  );

  app.get(
    '/api/dev/mailbox/:id/html',
    {
      config: { access: 'public' },
      schema: { tags: ['dev'], params: idParams },
    },
    async (request, reply) => {
      const message = mailbox(request).find(request.params.id);
      if (message === undefined || message.html === null) throw notFound();
      // Our own policy replaces the app's: the mail's inline styles may apply, nothing else may load or run.
      return reply.header('content-security-policy', DEV_MAIL_HTML_CSP).type('text/html; charset=utf-8').send(message.html);
    },
  );
}

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/**
 * A request from a program on this machine, addressed to this server by one of its own names:
 * - the TCP peer is loopback (not request.ip: X-Forwarded-For must not make a remote client look local);
 * - no proxy header at all: a proxy on this machine connects from loopback, and forwards others;
 * - the Host is PUBLIC_URL's host name, localhost or a loopback literal: a web page whose own name
 *   an attacker rebound to 127.0.0.1 (DNS rebinding) sends its own name;
 * - a browser read from another site or origin (Sec-Fetch-Site other than same-origin) is refused;
 *   curl and other tools send no Sec-Fetch-Site.
 */
function isLocalRequest(request: FastifyRequest, publicHostname: string): boolean {
  const headers = request.headers;
  if (Object.keys(headers).some((name) => name === 'forwarded' || name === 'x-real-ip' || name.startsWith('x-forwarded-'))) return false;
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return false;
  const host = hostnameOf(headers.host);
  if (host === undefined || !(host === publicHostname.toLowerCase() || host === 'localhost' || host === '[::1]' || LOOPBACK_V4.test(host))) return false;
  const address = request.socket.remoteAddress ?? '';
  return address === '::1' || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

/** The host name of a Host header, lower-cased, IPv6 literals in brackets; undefined when malformed. */
function hostnameOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  return m === null ? undefined : m[1]!.toLowerCase();
}

/** Where mail goes now, and whether this server lets an admin switch it. */
async function deliveryState(deps: AppDeps): Promise<DeliveryTargetState> {
  const [settings, chosen] = await Promise.all([findEmailSettings(deps.db), findDeliveryTarget(deps.db)]);
  return effectiveDeliveryTarget({ config: deps.config, devMailboxRuns: deps.devInbox !== undefined, chosen, settingsSaved: settings !== undefined });
}

/** The body's settings, checked as a save checks them: 400 invalid_request with `fields`. */
function validSettingsFromBody(deps: AppDeps, body: EmailSettingsBody): EmailSettings {
  const settings = settingsFromBody(body);
  const fields = validateEmailSettings(settings, deps.config.mailSecretNamePattern);
  if (Object.keys(fields).length > 0) throw invalidInput('Some fields are not valid.', fields);
  return settings;
}

/**
 * Where mail goes and with which credentials: a stolen or unattended admin session must not
 * redirect reset emails or the sender's password to another host without the password — by a
 * save, or by a test of unsaved settings (which sends the stored secrets where they point).
 */
async function reauthenticateIfMoved(
  deps: AppDeps,
  request: FastifyRequest,
  previous: EmailSettings | undefined,
  settings: EmailSettings,
  currentPassword: string | undefined,
): Promise<void> {
  if (!REAUTHENTICATED_FIELDS.some((k) => previous?.[k] !== settings[k])) return;
  if ((currentPassword ?? '') === '') throw reauthenticationRequired();
  await verifyCurrentPassword(deps, currentSession(request), currentPassword!, request.ip);
}

const SECRET_LABELS: Record<keyof EmailSettingsState['secretsResolve'], [string, (s: EmailSettings) => string | null]> = {
  email: ['sender address', (s) => s.emailSecretName],
  password: ['password', (s) => s.passwordSecretName],
  clientSecret: ['client secret', (s) => s.clientSecretName],
  certificate: ['certificate', (s) => s.certificateName],
};

/** What keeps saved settings from sending, each with what to do: a named secret not found, or the store unreadable. */
function secretWarnings(deps: AppDeps, settings: EmailSettings, report: SecretsReport): string[] {
  if (report.secretsError !== undefined) {
    return [`The secret store could not be read (${report.secretsError}): no email can go out until it answers. Send a test email once it does.`];
  }
  const where =
    deps.secrets.kind === 'azure-keyvault'
      ? 'add it to the Azure Key Vault Gatehouse reads'
      : deps.secrets.kind === 'env'
        ? 'set it in the environment Gatehouse reads secrets from'
        : 'set it with `gatehouse secrets set NAME` (the local secret store)';
  const warnings: string[] = [];
  for (const key of Object.keys(SECRET_LABELS) as (keyof typeof SECRET_LABELS)[]) {
    if (report.secretsResolve[key] !== false) continue;
    const [label, nameOf] = SECRET_LABELS[key];
    const name = nameOf(settings) ?? '';
    warnings.push(`The ${label} secret “${name}” was not found, so no email can go out: ${where.replace('NAME', name)}, then send a test email.`);
  }
  return warnings;
}

/** The form as saved: trimmed, a blank field is none, a field left out takes its default. */
function settingsFromBody(body: EmailSettingsBody): EmailSettings {
  const text = (value: string | null | undefined): string | null => {
    const trimmed = value?.trim() ?? '';
    return trimmed === '' ? null : trimmed;
  };
  const d = DEFAULT_EMAIL_SETTINGS;
  return {
    transport: body.transport ?? d.transport,
    host: body.host?.trim() ?? d.host,
    port: body.port ?? d.port,
    sslEnabled: body.sslEnabled ?? d.sslEnabled,
    tlsMode: body.tlsMode ?? d.tlsMode,
    senderAddress: text(body.senderAddress),
    emailSecretName: text(body.emailSecretName),
    // An empty field on the form means "a relay without AUTH".
    passwordSecretName: text(body.passwordSecretName),
    tenantId: text(body.tenantId),
    clientId: text(body.clientId),
    entraCredential: body.entraCredential ?? null,
    clientSecretName: text(body.clientSecretName),
    certificateName: text(body.certificateName),
  };
}

/** Whether each named secret resolves now; never a value. A store outage reads as "no", with its message. */
async function checkSecrets(deps: AppDeps, settings: EmailSettings): Promise<SecretsReport> {
  let secretsError: string | undefined;
  const resolves = async (name: string | null, used: boolean): Promise<boolean | null> => {
    if (!used || name === null || name === '') return null;
    // Settings saved before MAIL_SECRET_NAME_PATTERN (or under a wider one) may name any secret: not read.
    if (!isMailSecretName(name, deps.config.mailSecretNamePattern)) return false;
    try {
      const value = await readWithTimeout(deps.secrets, name);
      return value !== undefined && value.trim() !== '';
    } catch (err) {
      deps.logger.warn({ err, secretName: name }, 'email settings: reading a secret failed');
      secretsError =
        err instanceof SecretStoreUnavailableError ? err.message : `The ${deps.secrets.kind} secret store could not be read.`;
      return false;
    }
  };
  const entra = settings.transport !== 'smtp';
  const secretsResolve = {
    email: await resolves(settings.emailSecretName, settings.senderAddress === null),
    password: await resolves(settings.passwordSecretName, settings.transport === 'smtp'),
    clientSecret: await resolves(settings.clientSecretName, entra && settings.entraCredential === 'client-secret'),
    certificate: await resolves(settings.certificateName, entra && settings.entraCredential === 'certificate'),
  };
  return secretsError === undefined ? { secretsResolve } : { secretsResolve, secretsError };
}

function readWithTimeout(secrets: SecretStore, name: string): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    secrets.get(name),
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new SecretStoreUnavailableError(`the ${secrets.kind} secret store did not answer within ${SECRET_CHECK_TIMEOUT_MS / 1000} s`)), SECRET_CHECK_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}
