import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { Button, FormActions, FormAlert, StatusMessage, TextField } from '../../../components/ui';
import { ApiError } from '../../../lib/api';
import { splitFieldErrors } from '../../../lib/field-errors';
import { useForm } from '../../../lib/use-form';
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
  const form = useForm({ email: '' }, ['email']);
  const [sentTo, setSentTo] = useState<string | null>(null);
  const address = form.values.email.trim();

  const submit = form.submit({
    check: () =>
      address === '' || !address.includes('@')
        ? { fields: { email: address === '' ? 'Enter the email address you registered with.' : 'Enter one email address, like name@example.com.' } }
        : undefined,
    action: async () => {
      await requestPasswordReset(address);
      setSentTo(address);
    },
    refused: (error) => {
      const split = splitFieldErrors(error, ['email']);
      if (!(error instanceof ApiError && error.code === 'invalid_request')) return split;
      return { fields: { email: split.fields.email ?? 'Enter one email address, like name@example.com.' } };
    },
  });

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
              form.set('email')('');
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
      <FormAlert>{form.message}</FormAlert>
      <TextField label="Email" type="email" name="email" autocomplete="email" autocapitalize="off" spellcheck={false} required {...form.field('email')} />
      <FormActions submit="Send reset link" pending={form.pending} pendingLabel="Sending…">
        {backToSignIn}
      </FormActions>
    </form>
  );
}
