import { useState } from 'preact/hooks';
import { CheckboxField, FormActions, FormAlert, Notice, PasswordField, StatusMessage, TextField, VERBATIM } from '../../../components/ui';
import { ApiError } from '../../../lib/api';
import { splitFieldErrors } from '../../../lib/field-errors';
import { useForm, type FieldMessages } from '../../../lib/use-form';
import type { EmailSettings, EmailSettingsState } from '../api/get-email-settings';
import { saveEmailSettings } from '../api/save-email-settings';
import { SecretStatus, secretSentence } from './secret-status';

export interface EmailSettingsFormProps {
  /** the last state the server reported (after load or save) */
  settings: EmailSettingsState;
  onSaved: (settings: EmailSettingsState) => void;
}

type FieldName = 'host' | 'port' | 'emailSecretName' | 'passwordSecretName' | 'currentPassword';
const FIELD_ORDER: readonly FieldName[] = ['host', 'port', 'emailSecretName', 'passwordSecretName', 'currentPassword'];
const REAUTHENTICATE = 'Enter your current password to change where mail is sent.';
const CORRECT_FIELDS = 'Correct the fields marked below.';

// The server's rule (Azure Key Vault's), checked here too so a typo is caught before saving.
const SECRET_NAME = /^[A-Za-z0-9-]{1,127}$/;
const SECRET_NAME_RULE = 'A secret name holds 1 to 127 letters, digits and dashes.';

interface Values {
  host: string;
  port: string;
  emailSecretName: string;
  passwordSecretName: string;
  sslEnabled: boolean;
}

/** Where mail goes and with which secrets: the server asks for the password when any of these changes (or on the first save). */
function changesWhereMailGoes(values: Values, settings: EmailSettingsState): boolean {
  if (!settings.configured) return true;
  const loaded = valuesOf(settings);
  return (['host', 'port', 'emailSecretName', 'passwordSecretName'] as const).some((k) => values[k].trim() !== loaded[k]);
}

function valuesOf(settings: EmailSettings): Values {
  return {
    host: settings.host,
    port: String(settings.port),
    emailSecretName: settings.emailSecretName,
    passwordSecretName: settings.passwordSecretName ?? '',
    sslEnabled: settings.sslEnabled,
  };
}

export function EmailSettingsForm({ settings, onSaved }: EmailSettingsFormProps) {
  const form = useForm(() => ({ ...valuesOf(settings), currentPassword: '' }), FIELD_ORDER);
  const { values } = form;
  const [saved, setSaved] = useState('');
  // The server may ask even when the page did not expect it (another admin saved in between).
  const [passwordAsked, setPasswordAsked] = useState(false);
  const needsPassword = passwordAsked || changesWhereMailGoes(values, settings);
  const host = values.host.trim();
  const portText = values.port.trim();
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  const emailSecretName = values.emailSecretName.trim();
  const passwordSecretName = values.passwordSecretName.trim();

  const submit = form.submit({
    check: () => {
      setSaved('');
      const fields: FieldMessages<FieldName> = {};
      if (host === '') fields.host = 'Enter the SMTP host, such as smtp.gmail.com.';
      else if (/[\s/:]/.test(host)) fields.host = 'Enter the host name alone, such as smtp.gmail.com (no scheme, no port).';
      if (!(port >= 1 && port <= 65535)) fields.port = 'Enter a port from 1 to 65535, such as 587.';
      if (emailSecretName === '') fields.emailSecretName = 'Enter the name of the secret that holds the sender address.';
      else if (!SECRET_NAME.test(emailSecretName)) fields.emailSecretName = SECRET_NAME_RULE;
      if (passwordSecretName !== '' && !SECRET_NAME.test(passwordSecretName)) fields.passwordSecretName = SECRET_NAME_RULE;
      if (needsPassword && values.currentPassword === '') fields.currentPassword = REAUTHENTICATE;
      return Object.keys(fields).length > 0 ? { fields, message: CORRECT_FIELDS } : undefined;
    },
    action: async () => {
      const result = await saveEmailSettings(
        {
          host,
          port,
          emailSecretName,
          // Empty means a relay without AUTH.
          passwordSecretName: passwordSecretName === '' ? null : passwordSecretName,
          sslEnabled: values.sslEnabled,
        },
        needsPassword ? values.currentPassword : undefined,
      );
      form.setValues({ ...valuesOf(result), currentPassword: '' });
      setPasswordAsked(false);
      setSaved(savedSentence(result));
      onSaved(result);
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
      const split = splitFieldErrors(error, FIELD_ORDER);
      const named = code === 'invalid_request' && (Object.keys(split.fields).length > 0 || split.rest.length > 0);
      return named ? { fields: split.fields, message: [CORRECT_FIELDS, ...split.rest].join(' ') } : split;
    },
  });

  return (
    <form class="form" noValidate onSubmit={submit} aria-labelledby="email-settings-heading">
      <h2 id="email-settings-heading">“Forgot password” email</h2>
      <p>Password reset emails are sent through this SMTP server, from the address kept in the email secret.</p>
      {!settings.configured && (
        <Notice tone="warning">
          <p>
            <strong>Not saved yet.</strong> Until these settings are saved, no reset email goes out to a real inbox.
          </p>
        </Notice>
      )}
      <FormAlert>{form.message}</FormAlert>
      <StatusMessage tone="success">{saved}</StatusMessage>
      <div class="form-grid">
        <TextField label="Host" {...VERBATIM} required hint="For example smtp.gmail.com or smtp.office365.com." {...form.field('host')} />
        <TextField
          label="Port"
          inputMode="numeric"
          autocomplete="off"
          required
          hint="587 for STARTTLS (the usual choice), 465 for implicit TLS."
          {...form.field('port')}
        />
      </div>
      <div class="form-note">
        <p>
          The sender address and its password are never stored here: give the <em>names</em> of the secrets that hold them. Set a
          secret with <code>gatehouse secrets set NAME</code> (the local secret store), or add it to Azure Key Vault when Gatehouse reads
          secrets from there.
        </p>
      </div>
      <div class="form-grid">
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
          {...form.field('emailSecretName')}
        />
        <TextField
          label="Password secret name"
          labelNote="optional"
          {...VERBATIM}
          hint={
            <>
              The secret that holds the sender’s password (an app password for Gmail). Leave empty for a relay without AUTH.
              <SecretStatus
                typed={values.passwordSecretName}
                checked={settings.passwordSecretName ?? ''}
                resolves={settings.secretsResolve.password}
              />
            </>
          }
          {...form.field('passwordSecretName')}
        />
      </div>
      {settings.secretsError !== undefined && (
        <Notice tone="warning">
          <p>
            <strong>The secret store could not be read.</strong> {settings.secretsError}
          </p>
        </Notice>
      )}
      <CheckboxField
        label="SSL enabled"
        hint={
          values.sslEnabled
            ? 'Port 465 uses implicit TLS; any other port, such as 587, requires STARTTLS. Certificates are always verified.'
            : 'Off: plain SMTP, switching to STARTTLS when the server offers it. The password is never sent unencrypted, except to a server on this machine.'
        }
        checked={values.sslEnabled}
        onChecked={form.set('sslEnabled')}
      />
      {needsPassword && (
        <PasswordField
          label="Current password"
          autocomplete="current-password"
          required
          hint="Your own password, to confirm a change of where mail is sent or which secrets it uses."
          {...form.field('currentPassword')}
        />
      )}
      <FormActions submit="Save" pending={form.pending} pendingLabel="Saving…" />
    </form>
  );
}

function savedSentence(result: EmailSettingsState): string {
  const parts = [`Saved. Email secret: ${secretSentence(result.secretsResolve.email)}.`];
  if (result.secretsResolve.password !== null) parts.push(`Password secret: ${secretSentence(result.secretsResolve.password)}.`);
  return parts.join(' ');
}
