import { useState } from 'preact/hooks';
import { FormActions, FormAlert, StatusMessage, TextField } from '../../../components/ui';
import { splitFieldErrors } from '../../../lib/field-errors';
import { useForm } from '../../../lib/use-form';
import { sendTestEmail, type TestEmailResult } from '../api/send-test-email';
import { TestStages } from './test-stages';

export interface TestEmailFormProps {
  /** prefilled To address (the admin's own email, when they have one) */
  defaultTo: string;
}

/** "Send test email": the saved settings checked step by step, with what went wrong and what to do. */
export function TestEmailForm({ defaultTo }: TestEmailFormProps) {
  const form = useForm({ to: defaultTo }, ['to']);
  const [result, setResult] = useState<{ to: string; outcome: TestEmailResult } | null>(null);
  const address = form.values.to.trim();

  const submit = form.submit({
    check: () => {
      setResult(null);
      if (address !== '' && address.includes('@')) return undefined;
      return { fields: { to: address === '' ? 'Enter the address to send the test email to.' : 'Enter one email address, like name@example.com.' } };
    },
    action: async () => setResult({ to: address, outcome: await sendTestEmail(address) }),
    refused: (error) => splitFieldErrors(error, ['to']),
  });

  const outcome = result?.outcome;
  return (
    <form class="form" noValidate onSubmit={submit} aria-labelledby="test-email-heading">
      <h2 id="test-email-heading">Send test email</h2>
      <p>
        Checks the <strong>saved</strong> settings step by step — secrets, the Microsoft Entra ID token (for Microsoft 365), DNS,
        connection, TLS, sign-in — and sends a short message. Save your changes first.
      </p>
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
              <strong>The test email was not sent.</strong> {outcome.message}
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
            Test email sent to <strong>{result!.to}</strong>: the mail server accepted it. Check that it arrived.
          </p>
        )}
      </StatusMessage>
      {outcome !== undefined && outcome.stages.length > 0 && <TestStages stages={outcome.stages} />}
    </form>
  );
}
