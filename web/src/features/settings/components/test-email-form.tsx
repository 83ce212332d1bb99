import { useRef, useState } from 'preact/hooks';
import { FormActions, FormAlert, StatusMessage, TextField } from '../../../components/ui';
import { splitFieldErrors } from '../../../lib/field-errors';
import { useForm } from '../../../lib/use-form';
import { sendTestEmail, type TestEmailResult, type UnsavedSettings } from '../api/send-test-email';
import { TestStages } from './test-stages';

/** The email settings form's side of the test: its current values, and where their errors go. */
export interface TestSettingsSource {
  /** whether the form holds values other than the saved ones */
  unsaved: boolean;
  /** undefined: test the saved settings; the values to test; null: the form's own check failed (shown on its fields) */
  prepare: () => UnsavedSettings | undefined | null;
  /** a refusal about the settings (their fields, the current password), shown on the settings form: true when it was */
  refused: (error: unknown) => boolean;
}

export interface TestEmailFormProps {
  /** prefilled To address (the admin's own email, when they have one) */
  defaultTo: string;
  source: TestSettingsSource;
}

const CORRECT_SETTINGS = 'Correct the email settings marked above, then send the test again.';

/** "Send test email": the form's values — saved or not — checked step by step, with what went wrong and what to do. */
export function TestEmailForm({ defaultTo, source }: TestEmailFormProps) {
  const form = useForm({ to: defaultTo }, ['to']);
  const [result, setResult] = useState<{ to: string; unsaved: boolean; outcome: TestEmailResult } | null>(null);
  const draft = useRef<UnsavedSettings | undefined>(undefined);
  const address = form.values.to.trim();

  const submit = form.submit({
    check: () => {
      setResult(null);
      if (address === '' || !address.includes('@')) {
        return { fields: { to: address === '' ? 'Enter the address to send the test email to.' : 'Enter one email address, like name@example.com.' } };
      }
      const prepared = source.prepare();
      if (prepared === null) return { message: CORRECT_SETTINGS };
      draft.current = prepared;
      return undefined;
    },
    action: async () => {
      const unsaved = draft.current;
      setResult({ to: address, unsaved: unsaved !== undefined, outcome: await sendTestEmail(address, unsaved) });
    },
    refused: (error) => (source.refused(error) ? { message: CORRECT_SETTINGS } : splitFieldErrors(error, ['to'])),
  });

  const outcome = result?.outcome;
  return (
    <form class="form" noValidate onSubmit={submit} aria-labelledby="test-email-heading">
      <h2 id="test-email-heading">Send test email</h2>
      <p>
        Checks the settings in the form above step by step — secrets, the Microsoft Entra ID token (for Microsoft 365), DNS, connection,
        TLS, sign-in — and sends a short message. Changes not saved yet are tested as they are, without saving them.
      </p>
      {source.unsaved && (
        <p class="form-note">
          The form has changes that are not saved: the test uses them. A change of where mail goes asks for your current password
          above, as saving does.
        </p>
      )}
      <TextField
        label="To address"
        type="email"
        autocomplete="email"
        autocapitalize="off"
        spellcheck={false}
        required
        {...form.field('to')}
      />
      <FormActions submit="Send test email" pending={form.pending} pendingLabel="Sending test email…" />
      <FormAlert>
        {form.message !== '' ? (
          form.message
        ) : outcome !== undefined && !outcome.ok ? (
          <>
            <p>
              <strong>The test email was not sent{result!.unsaved ? ' with the unsaved settings' : ''}.</strong> {outcome.message}
            </p>
            {outcome.hint !== '' && (
              <p>
                <strong>What to do:</strong> {outcome.hint}
              </p>
            )}
          </>
        ) : null}
      </FormAlert>
      <StatusMessage tone="success">
        {outcome?.ok === true && (
          <p>
            Test email sent to <strong>{result!.to}</strong>
            {result!.unsaved ? ' with the unsaved settings (nothing was saved)' : ''}: the mail server accepted it. Check that it arrived.
          </p>
        )}
      </StatusMessage>
      {outcome !== undefined && outcome.stages.length > 0 && <TestStages stages={outcome.stages} />}
    </form>
  );
}
