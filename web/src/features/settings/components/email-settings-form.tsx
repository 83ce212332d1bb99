import { useRef, useState } from 'preact/hooks';
import { Button, CheckboxField, FormAlert, Notice, PasswordField, StatusMessage, TextField } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import type { EmailSettings, EmailSettingsState } from '../api/get-email-settings';
import { saveEmailSettings } from '../api/save-email-settings';
import { SecretStatus, secretSentence } from './secret-status';

export interface EmailSettingsFormProps {
  /** the last state the server reported (after load or save) */
  settings: EmailSettingsState;
  onSaved: (settings: EmailSettingsState) => void;
}

type FieldName = 'host' | 'port' | 'emailSecretName' | 'passwordSecretName' | 'currentPassword';
type Errors = Partial<Record<FieldName, string>>;
const FIELD_ORDER: readonly FieldName[] = ['host', 'port', 'emailSecretName', 'passwordSecretName', 'currentPassword'];
const REAUTHENTICATE = 'Enter your current password to change where mail is sent.';

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
  const [values, setValues] = useState<Values>(() => valuesOf(settings));
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState('');
  const [saved, setSaved] = useState('');
  const [pending, setPending] = useState(false);
  const [currentPassword, setCurrentPassword] = useState('');
  // The server may ask even when the page did not expect it (another admin saved in between).
  const [passwordAsked, setPasswordAsked] = useState(false);
  const needsPassword = passwordAsked || changesWhereMailGoes(values, settings);
  const refs: Record<FieldName, { current: HTMLInputElement | null }> = {
    host: useRef<HTMLInputElement>(null),
    port: useRef<HTMLInputElement>(null),
    emailSecretName: useRef<HTMLInputElement>(null),
    passwordSecretName: useRef<HTMLInputElement>(null),
    currentPassword: useRef<HTMLInputElement>(null),
  };
  const set =
    <K extends keyof Values>(key: K) =>
    (value: Values[K]) =>
      setValues((v) => ({ ...v, [key]: value }));

  function show(found: Errors, message = ''): void {
    setErrors(found);
    setFormError(message);
    const first = FIELD_ORDER.find((k) => found[k] !== undefined);
    if (first) refs[first].current?.focus();
  }

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    if (pending) return;
    setSaved('');
    const host = values.host.trim();
    const portText = values.port.trim();
    const emailSecretName = values.emailSecretName.trim();
    const passwordSecretName = values.passwordSecretName.trim();
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;

    const found: Errors = {};
    if (host === '') found.host = 'Enter the SMTP host, such as smtp.gmail.com.';
    else if (/[\s/:]/.test(host)) found.host = 'Enter the host name alone, such as smtp.gmail.com (no scheme, no port).';
    if (!(port >= 1 && port <= 65535)) found.port = 'Enter a port from 1 to 65535, such as 587.';
    if (emailSecretName === '') found.emailSecretName = 'Enter the name of the secret that holds the sender address.';
    else if (!SECRET_NAME.test(emailSecretName)) found.emailSecretName = SECRET_NAME_RULE;
    if (passwordSecretName !== '' && !SECRET_NAME.test(passwordSecretName)) found.passwordSecretName = SECRET_NAME_RULE;
    if (needsPassword && currentPassword === '') found.currentPassword = REAUTHENTICATE;
    if (Object.keys(found).length > 0) return show(found, 'Correct the fields marked below.');

    setPending(true);
    show({});
    try {
      const result = await saveEmailSettings(
        {
          host,
          port,
          emailSecretName,
          // Empty means a relay without AUTH.
          passwordSecretName: passwordSecretName === '' ? null : passwordSecretName,
          sslEnabled: values.sslEnabled,
        },
        needsPassword ? currentPassword : undefined,
      );
      setValues(valuesOf(result));
      setCurrentPassword('');
      setPasswordAsked(false);
      setSaved(savedSentence(result));
      onSaved(result);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'reauthentication_required') {
        setPasswordAsked(true);
        show({ currentPassword: error.message });
        // The field appears with this render: focus it once it is there.
        setTimeout(() => refs.currentPassword.current?.focus());
      } else if (error instanceof ApiError && error.code === 'invalid_current_password') {
        show({ currentPassword: 'The current password is not correct.' });
      } else if (error instanceof ApiError && error.code === 'invalid_request' && Object.keys(error.fields).length > 0) {
        const fields: Errors = {};
        const other: string[] = [];
        for (const [key, message] of Object.entries(error.fields)) {
          if ((FIELD_ORDER as readonly string[]).includes(key)) fields[key as FieldName] = message;
          else other.push(message);
        }
        show(fields, ['Correct the fields marked below.', ...other].join(' '));
      } else {
        show({}, describeError(error));
      }
    } finally {
      setPending(false);
    }
  }

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
      <FormAlert>{formError}</FormAlert>
      <StatusMessage tone="success">{saved}</StatusMessage>
      <div class="form-grid">
        <TextField
          label="Host"
          autocomplete="off"
          autocapitalize="off"
          spellcheck={false}
          required
          hint="For example smtp.gmail.com or smtp.office365.com."
          value={values.host}
          onValue={set('host')}
          error={errors.host}
          inputRef={refs.host}
        />
        <TextField
          label="Port"
          inputMode="numeric"
          autocomplete="off"
          required
          hint="587 for STARTTLS (the usual choice), 465 for implicit TLS."
          value={values.port}
          onValue={set('port')}
          error={errors.port}
          inputRef={refs.port}
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
          autocomplete="off"
          autocapitalize="off"
          spellcheck={false}
          required
          hint={
            <>
              The secret that holds the sender address, for example <code>smtp-sender</code>.
              <SecretStatus typed={values.emailSecretName} checked={settings.emailSecretName} resolves={settings.secretsResolve.email} />
            </>
          }
          value={values.emailSecretName}
          onValue={set('emailSecretName')}
          error={errors.emailSecretName}
          inputRef={refs.emailSecretName}
        />
        <TextField
          label="Password secret name"
          labelNote="optional"
          autocomplete="off"
          autocapitalize="off"
          spellcheck={false}
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
          value={values.passwordSecretName}
          onValue={set('passwordSecretName')}
          error={errors.passwordSecretName}
          inputRef={refs.passwordSecretName}
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
        onChecked={set('sslEnabled')}
      />
      {needsPassword && (
        <PasswordField
          label="Current password"
          autocomplete="current-password"
          required
          hint="Your own password, to confirm a change of where mail is sent or which secrets it uses."
          value={currentPassword}
          onValue={setCurrentPassword}
          error={errors.currentPassword}
          inputRef={refs.currentPassword}
        />
      )}
      <div class="form-actions">
        <Button type="submit" pending={pending} pendingLabel="Saving…">
          Save
        </Button>
      </div>
    </form>
  );
}

function savedSentence(result: EmailSettingsState): string {
  const parts = [`Saved. Email secret: ${secretSentence(result.secretsResolve.email)}.`];
  if (result.secretsResolve.password !== null) parts.push(`Password secret: ${secretSentence(result.secretsResolve.password)}.`);
  return parts.join(' ');
}
