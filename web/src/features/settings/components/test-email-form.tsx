import { useRef, useState } from 'preact/hooks';
import { Button, FormAlert, StatusMessage, TextField } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import { sendTestEmail, type TestEmailResult } from '../api/send-test-email';
import { TestStages } from './test-stages';

export interface TestEmailFormProps {
  /** prefilled To address (the admin's own email, when they have one) */
  defaultTo: string;
}

/** "Send test email": the saved settings checked step by step, with what went wrong and what to do. */
export function TestEmailForm({ defaultTo }: TestEmailFormProps) {
  const [to, setTo] = useState(defaultTo);
  const [error, setError] = useState('');
  const [formError, setFormError] = useState('');
  const [pending, setPending] = useState(false);
  const [result, setResult] = useState<{ to: string; outcome: TestEmailResult } | null>(null);
  const toRef = useRef<HTMLInputElement>(null);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    if (pending) return;
    const address = to.trim();
    setFormError('');
    setResult(null);
    if (address === '' || !address.includes('@')) {
      setError(address === '' ? 'Enter the address to send the test email to.' : 'Enter one email address, like name@example.com.');
      toRef.current?.focus();
      return;
    }
    setError('');
    setPending(true);
    try {
      setResult({ to: address, outcome: await sendTestEmail(address) });
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid_request' && err.fields.to !== undefined) {
        setError(err.fields.to);
        toRef.current?.focus();
      } else {
        setFormError(describeError(err));
      }
    } finally {
      setPending(false);
    }
  }

  const outcome = result?.outcome;
  return (
    <form class="form" noValidate onSubmit={submit} aria-labelledby="test-email-heading">
      <h2 id="test-email-heading">Send test email</h2>
      <p>
        Checks the <strong>saved</strong> settings step by step — secrets, DNS, connection, TLS, sign-in — and sends a short message. Save
        your changes first.
      </p>
      <TextField
        label="To address"
        type="email"
        autocomplete="email"
        autocapitalize="off"
        spellcheck={false}
        required
        value={to}
        onValue={setTo}
        error={error}
        inputRef={toRef}
      />
      <div class="form-actions">
        <Button type="submit" pending={pending} pendingLabel="Sending test email…">
          Send test email
        </Button>
      </div>
      <FormAlert>
        {formError !== '' ? (
          formError
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
            Test email sent to <strong>{result!.to}</strong>: the SMTP server accepted it. Check that it arrived.
          </p>
        )}
      </StatusMessage>
      {outcome !== undefined && outcome.stages.length > 0 && <TestStages stages={outcome.stages} />}
    </form>
  );
}
