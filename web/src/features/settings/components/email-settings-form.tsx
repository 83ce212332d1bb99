import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import {
  CheckboxField,
  FormActions,
  FormAlert,
  Notice,
  PasswordField,
  SelectField,
  TextField,
  VERBATIM,
} from '../../../components/ui';
import { ApiError } from '../../../lib/api';
import { splitFieldErrors } from '../../../lib/field-errors';
import { useForm, type FieldMessages } from '../../../lib/use-form';
import type { EmailSettingsState } from '../api/get-email-settings';
import { saveEmailSettings } from '../api/save-email-settings';
import type { UnsavedSettings } from '../api/send-test-email';
import {
  changesWhereMailGoes,
  checkEmailForm,
  emailFormValues,
  OFFICE365_SMTP,
  differsFromSaved,
  savedSentence,
  settingsFromValues,
  usesEntra,
  usesSmtp,
  visibleFields,
  type EmailFieldName,
  type EntraCredential,
  type SenderSource,
  type TlsModeChoice,
  type Transport,
} from '../utils/email-form';
import { RadioGroup, type RadioOption } from './radio-group';
import { SecretStatus } from './secret-status';
import { TestEmailForm, type TestSettingsSource } from './test-email-form';
import '../settings.css';

export interface EmailSettingsFormProps {
  /** the last state the server reported (after load or save) */
  settings: EmailSettingsState;
  /** after a save; may answer a sentence to add to the confirmation (where mail goes now) */
  onSaved: (settings: EmailSettingsState) => Promise<string | undefined> | void;
  /** the "Send test email" form's To address */
  testTo: string;
}

/** What a save answered: a success, or a warning when the saved settings cannot send yet. */
interface SaveOutcome {
  tone: 'success' | 'warning';
  text: string;
  warnings: readonly string[];
}

/** The save's confirmation, announced: green when the settings can send, a warning with what to do when not. */
function SaveStatus({ outcome }: { outcome: SaveOutcome | null }) {
  const body: ComponentChildren =
    outcome === null ? null : outcome.tone === 'success' ? (
      outcome.text
    ) : (
      <>
        <p>
          <strong>Saved, but no email can go out yet.</strong> {outcome.text}
        </p>
        <p>
          <strong>What to do:</strong>
        </p>
        <ul class="save-warnings">
          {outcome.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      </>
    );
  return (
    <div role="status" aria-atomic="true" class={outcome === null ? 'live-region' : `alert alert-${outcome.tone}`}>
      {body}
    </div>
  );
}

// The fields that can take focus when they have an error (the checkbox and the select have no ref).
const FOCUS_ORDER: readonly EmailFieldName[] = [
  'transport',
  'host',
  'port',
  'senderAddress',
  'emailSecretName',
  'passwordSecretName',
  'entraCredential',
  'tenantId',
  'clientId',
  'clientSecretName',
  'certificateName',
  'currentPassword',
];
const CORRECT_FIELDS = 'Correct the fields marked below.';

const TRANSPORTS: readonly RadioOption<Transport>[] = [
  {
    value: 'smtp',
    label: 'SMTP with a password',
    hint: 'Any SMTP server, signing in with a password from a secret (or a relay without sign-in). Microsoft 365 turns this off by default at the end of December 2026.',
  },
  {
    value: 'smtp-oauth2',
    label: 'Microsoft 365 — SMTP with OAuth2',
    hint: 'Microsoft 365’s SMTP server, signing in with a token from Microsoft Entra ID instead of a password.',
  },
  {
    value: 'graph',
    label: 'Microsoft 365 — Microsoft Graph',
    hint: 'Recommended for Microsoft 365: sends through the Microsoft Graph API over HTTPS, with a token from Microsoft Entra ID.',
  },
];

const SENDER_SOURCES: readonly RadioOption<SenderSource>[] = [
  { value: 'address', label: 'typed here' },
  { value: 'secret', label: 'in a secret' },
];

const ENTRA_CREDENTIALS: readonly RadioOption<EntraCredential>[] = [
  {
    value: 'managed-identity',
    label: 'Managed identity',
    hint: 'No secret: the identity of the Azure resource Gatehouse runs on (App Service, Container Apps, a VM).',
  },
  { value: 'client-secret', label: 'Client secret', hint: 'A client secret of the app registration, kept in the secret store.' },
  { value: 'certificate', label: 'Certificate', hint: 'A certificate of the app registration with its private key (PEM), kept in Key Vault.' },
];

const TLS_MODES: ReadonlyArray<{ value: TlsModeChoice; label: string }> = [
  { value: 'auto', label: 'Automatic — implicit TLS on 465, STARTTLS elsewhere' },
  { value: 'starttls', label: 'STARTTLS' },
  { value: 'implicit', label: 'Implicit TLS (TLS from the first byte)' },
];

/** What "SSL enabled" means with the TLS mode chosen (or without SSL). */
function sslHint(sslEnabled: boolean, tlsMode: TlsModeChoice, transport: Transport): string {
  const credential = transport === 'smtp' ? 'The password' : 'The token';
  if (!sslEnabled) {
    return `Off: plain SMTP, switching to STARTTLS when the server offers it. ${credential} is never sent unencrypted, except to a server on this machine.`;
  }
  if (tlsMode === 'starttls') return 'STARTTLS is required, on any port. Certificates are always verified.';
  if (tlsMode === 'implicit') return 'TLS from the first byte, on any port. Certificates are always verified.';
  return 'Port 465 uses implicit TLS; any other port, such as 587, requires STARTTLS. Certificates are always verified.';
}

export function EmailSettingsForm({ settings, onSaved, testTo }: EmailSettingsFormProps) {
  const form = useForm(() => emailFormValues(settings), FOCUS_ORDER);
  const { values } = form;
  const [saved, setSaved] = useState<SaveOutcome | null>(null);
  // What "Send test email" found wrong with these fields (the form's own errors come first).
  const [testErrors, setTestErrors] = useState<FieldMessages<EmailFieldName>>({});
  // The server may ask even when the page did not expect it (another admin saved in between).
  const [passwordAsked, setPasswordAsked] = useState(false);
  const needsPassword = passwordAsked || changesWhereMailGoes(values, settings);
  const shown = new Set(visibleFields(values, needsPassword));
  const smtp = usesSmtp(values.transport);
  const entra = usesEntra(values.transport);
  const managed = values.entraCredential === 'managed-identity';
  const field = <F extends EmailFieldName & keyof typeof values>(name: F) => {
    const binding = form.field(name);
    return { ...binding, error: binding.error ?? testErrors[name] };
  };
  const showTestErrors = (fields: FieldMessages<EmailFieldName>): void => {
    setTestErrors(fields);
    const first = FOCUS_ORDER.find((name) => fields[name] !== undefined);
    // The field may appear with this render (the current password): focus it once it is there.
    if (first !== undefined) setTimeout(() => form.refs[first].current?.focus());
  };

  // "Send test email" checks the values on the form, saved or not.
  const unsaved = !settings.configured || differsFromSaved(values, settings);
  const testSource: TestSettingsSource = {
    unsaved,
    prepare: (): UnsavedSettings | undefined | null => {
      setTestErrors({});
      if (!unsaved) return undefined;
      const fields = checkEmailForm(values, needsPassword);
      if (Object.keys(fields).length > 0) {
        showTestErrors(fields);
        return null;
      }
      const draft = settingsFromValues(values, settings);
      return needsPassword ? { settings: draft, currentPassword: values.currentPassword } : { settings: draft };
    },
    refused: (error: unknown): boolean => {
      if (!(error instanceof ApiError)) return false;
      if (error.code === 'reauthentication_required') {
        setPasswordAsked(true);
        showTestErrors({ currentPassword: error.message });
        return true;
      }
      if (error.code === 'invalid_current_password') {
        showTestErrors({ currentPassword: 'The current password is not correct.' });
        return true;
      }
      if (error.code !== 'invalid_request') return false;
      const split = splitFieldErrors(error, [...shown]);
      if (Object.keys(split.fields).length === 0) return false;
      showTestErrors(split.fields as FieldMessages<EmailFieldName>);
      return true;
    },
  };

  // SMTP with OAuth2 starts from Microsoft 365's SMTP server when no server is typed yet.
  const chooseTransport = (transport: Transport): void => {
    const fill = transport === 'smtp-oauth2' && values.host.trim() === '';
    form.setValues({
      ...values,
      transport,
      ...(fill ? { host: OFFICE365_SMTP.host, port: String(OFFICE365_SMTP.port), sslEnabled: true } : {}),
    });
  };

  const submit = form.submit({
    check: () => {
      setSaved(null);
      setTestErrors({});
      const fields = checkEmailForm(values, needsPassword);
      return Object.keys(fields).length > 0 ? { fields, message: CORRECT_FIELDS } : undefined;
    },
    action: async () => {
      const result = await saveEmailSettings(settingsFromValues(values, settings), needsPassword ? values.currentPassword : undefined);
      form.setValues(emailFormValues(result));
      setPasswordAsked(false);
      const more = (await onSaved(result)) ?? '';
      const sentence = [savedSentence(result), more].filter((t) => t !== '').join(' ');
      const warnings = result.warnings ?? [];
      setSaved(
        warnings.length === 0
          ? { tone: 'success', text: sentence, warnings }
          : { tone: 'warning', text: sentence.replace(/^Saved\. ?/, ''), warnings },
      );
    },
    refused: (error) => {
      if (error instanceof ApiError && error.code === 'reauthentication_required') {
        setPasswordAsked(true);
        // The field appears with this render: focus it once it is there.
        setTimeout(() => form.refs.currentPassword.current?.focus());
        return { fields: { currentPassword: error.message } };
      }
      const code = error instanceof ApiError ? error.code : undefined;
      if (code === 'invalid_current_password') return { fields: { currentPassword: 'The current password is not correct.' } };
      // A message for a field this form does not show now goes to the form's alert.
      const split = splitFieldErrors(error, [...shown]);
      const named = code === 'invalid_request' && (Object.keys(split.fields).length > 0 || split.rest.length > 0);
      return named ? { fields: split.fields, message: [CORRECT_FIELDS, ...split.rest].join(' ') } : split;
    },
  });

  return (
    <>
      <section class="card">
        <form class="form" noValidate onSubmit={submit} aria-labelledby="email-settings-heading">
          <h2 id="email-settings-heading">“Forgot password” email</h2>
          <p>Password reset emails go out the way chosen below, from a sender address typed below or kept in a secret.</p>
          {!settings.configured && (
            <Notice tone="warning">
              <p>
                <strong>Not saved yet.</strong> Until these settings are saved, no reset email goes out to a real inbox.
              </p>
            </Notice>
          )}
          <FormAlert>{form.message}</FormAlert>
          <SaveStatus outcome={saved} />

          <RadioGroup
            id="email-transport"
            label="Send with"
            value={values.transport}
            onValue={chooseTransport}
            options={TRANSPORTS}
            error={form.errors.transport}
            inputRef={form.refs.transport}
          />

          {smtp && (
            <>
              <div class="form-grid">
                <TextField
                  label="Host"
                  {...VERBATIM}
                  required
                  hint={
                    values.transport === 'smtp-oauth2'
                      ? 'smtp.office365.com for Microsoft 365.'
                      : 'For example smtp.gmail.com or smtp.office365.com.'
                  }
                  {...field('host')}
                />
                <TextField
                  label="Port"
                  inputMode="numeric"
                  autocomplete="off"
                  required
                  hint="587 for STARTTLS (the usual choice), 465 for implicit TLS."
                  {...field('port')}
                />
              </div>
              <CheckboxField
                label="SSL enabled"
                hint={sslHint(values.sslEnabled, values.tlsMode, values.transport)}
                checked={values.sslEnabled}
                onChecked={form.set('sslEnabled')}
                error={form.errors.sslEnabled}
              />
              {shown.has('tlsMode') && (
                <SelectField
                  label="TLS mode"
                  value={values.tlsMode}
                  onValue={(mode) => form.set('tlsMode')(mode as TlsModeChoice)}
                  options={TLS_MODES}
                  error={form.errors.tlsMode}
                />
              )}
            </>
          )}

          <div class="form-note">
            <p>
              Passwords, client secrets and certificates are never stored here: give the <em>names</em> of the secrets that hold them. Set a
              secret with <code>gatehouse secrets set NAME</code> (the local secret store), or add it to Azure Key Vault when Gatehouse reads
              secrets from there.
            </p>
          </div>

          <RadioGroup
            id="email-sender-source"
            label="The sender address is:"
            value={values.senderSource}
            onValue={form.set('senderSource')}
            options={SENDER_SOURCES}
          />
          <div class="form-grid">
            {shown.has('senderAddress') && (
              <TextField
                label="Sender address"
                type="email"
                {...VERBATIM}
                required
                hint={
                  values.transport === 'graph'
                    ? 'The mailbox that sends, for example gatehouse@contoso.com; the app needs permission to send as it.'
                    : 'The address reset emails come from, for example alerts@example.com.'
                }
                {...field('senderAddress')}
              />
            )}
            {shown.has('emailSecretName') && (
              <TextField
                label="Email secret name"
                {...VERBATIM}
                required
                hint={
                  <>
                    The secret that holds the sender address, for example <code>smtp-sender</code>.
                    <SecretStatus typed={values.emailSecretName} checked={settings.emailSecretName} resolves={settings.secretsResolve.email} />
                  </>
                }
                {...field('emailSecretName')}
              />
            )}
            {shown.has('passwordSecretName') && (
              <TextField
                label="Password secret name"
                labelNote="optional"
                {...VERBATIM}
                hint={
                  <>
                    The secret that holds the sender’s password (an app password for Gmail). Leave empty for a relay without AUTH.
                    <SecretStatus
                      typed={values.passwordSecretName}
                      checked={settings.passwordSecretName}
                      resolves={settings.secretsResolve.password}
                    />
                  </>
                }
                {...field('passwordSecretName')}
              />
            )}
          </div>

          {entra && (
            <>
              <RadioGroup
                id="email-entra-credential"
                label="App signs in with"
                value={values.entraCredential}
                onValue={form.set('entraCredential')}
                options={ENTRA_CREDENTIALS}
                error={form.errors.entraCredential}
                inputRef={form.refs.entraCredential}
              />
              <div class="form-grid">
                {shown.has('tenantId') && (
                  <TextField
                    label="Tenant ID"
                    {...VERBATIM}
                    required
                    hint="The directory (tenant) ID from the app registration’s Overview page, or a domain such as contoso.onmicrosoft.com."
                    {...field('tenantId')}
                  />
                )}
                {managed ? (
                  <TextField
                    label="User-assigned identity client ID"
                    labelNote="optional"
                    {...VERBATIM}
                    hint="Leave empty for the system-assigned identity."
                    {...field('clientId')}
                  />
                ) : (
                  <TextField
                    label="Client ID"
                    {...VERBATIM}
                    required
                    hint="The application (client) ID, a GUID from the app registration’s Overview page."
                    {...field('clientId')}
                  />
                )}
              </div>
              {/* A row of its own: the tenant and client ids (GUIDs) keep room to be read in full. */}
              {(shown.has('clientSecretName') || shown.has('certificateName')) && (
                <div class="form-grid">
                  {shown.has('clientSecretName') && (
                    <TextField
                      label="Client secret name"
                      {...VERBATIM}
                      required
                      hint={
                        <>
                          The secret that holds the client secret’s value, for example <code>mail-client-secret</code>.
                          <SecretStatus
                            typed={values.clientSecretName}
                            checked={settings.clientSecretName}
                            resolves={settings.secretsResolve.clientSecret}
                          />
                        </>
                      }
                      {...field('clientSecretName')}
                    />
                  )}
                  {shown.has('certificateName') && (
                    <TextField
                      label="Certificate name"
                      {...VERBATIM}
                      required
                      hint={
                        <>
                          The Key Vault certificate holding the certificate and its private key in PEM, for example <code>mail-cert</code>.
                          <SecretStatus
                            typed={values.certificateName}
                            checked={settings.certificateName}
                            resolves={settings.secretsResolve.certificate}
                          />
                        </>
                      }
                      {...field('certificateName')}
                    />
                  )}
                </div>
              )}
            </>
          )}

          {settings.secretsError !== undefined && (
            <Notice tone="warning">
              <p>
                <strong>The secret store could not be read.</strong> {settings.secretsError}
              </p>
            </Notice>
          )}
          {needsPassword && (
            <PasswordField
              label="Current password"
              autocomplete="current-password"
              required
              hint="Your own password, to confirm a change of where mail is sent or which secrets it uses."
              {...field('currentPassword')}
            />
          )}
          <FormActions submit="Save" pending={form.pending} pendingLabel="Saving…" />
        </form>
      </section>
      <section class="card">
        <TestEmailForm defaultTo={testTo} source={testSource} />
      </section>
    </>
  );
}

