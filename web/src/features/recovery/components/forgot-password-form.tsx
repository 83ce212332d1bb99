import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { Button, FormAlert, StatusMessage, TextField } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import { requestPasswordReset } from '../api/request-password-reset';

export interface ForgotPasswordFormProps {
  backToSignIn: ComponentChildren;
  /** shown with the confirmation (the page adds the dev mailbox link when there is one) */
  afterSent?: ComponentChildren;
}

/**
 * One confirmation for every address: the page never says whether an account exists
 * (the server answers every well-formed address the same way).
 */
export function ForgotPasswordForm({ backToSignIn, afterSent }: ForgotPasswordFormProps) {
  const [email, setEmail] = useState('');
  const [error, setError] = useState('');
  const [formError, setFormError] = useState('');
  const [pending, setPending] = useState(false);
  const [sentTo, setSentTo] = useState<string | null>(null);
  const emailRef = useRef<HTMLInputElement>(null);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    if (pending) return;
    const address = email.trim();
    setFormError('');
    if (address === '' || !address.includes('@')) {
      setError(address === '' ? 'Enter the email address you registered with.' : 'Enter one email address, like name@example.com.');
      emailRef.current?.focus();
      return;
    }
    setError('');
    setPending(true);
    try {
      await requestPasswordReset(address);
      setSentTo(address);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid_request') {
        setError(err.fields.email ?? 'Enter one email address, like name@example.com.');
        emailRef.current?.focus();
      } else {
        setFormError(describeError(err));
      }
    } finally {
      setPending(false);
    }
  }

  if (sentTo !== null) {
    return (
      <div class="form">
        <StatusMessage tone="success">
          <p>
            If an account uses <strong>{sentTo}</strong>, we sent a link to reset its password. Check your inbox, and your spam folder
            if nothing arrives in a few minutes.
          </p>
        </StatusMessage>
        <p>The link works once and expires after a while. No email? Check the address and try again, or ask an administrator.</p>
        {afterSent}
        <div class="form-actions">
          <Button
            variant="secondary"
            onClick={() => {
              setSentTo(null);
              setEmail('');
            }}
          >
            Use another address
          </Button>
          {backToSignIn}
        </div>
      </div>
    );
  }

  return (
    <form class="form" noValidate onSubmit={submit}>
      <p>Enter the email address you registered with. We will send you a link to choose a new password.</p>
      <FormAlert>{formError}</FormAlert>
      <TextField
        label="Email"
        type="email"
        name="email"
        autocomplete="email"
        autocapitalize="off"
        spellcheck={false}
        required
        value={email}
        onValue={setEmail}
        error={error}
        inputRef={emailRef}
      />
      <div class="form-actions">
        <Button type="submit" pending={pending} pendingLabel="Sending…">
          Send reset link
        </Button>
        {backToSignIn}
      </div>
    </form>
  );
}
