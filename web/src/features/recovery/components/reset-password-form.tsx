import { FormActions, FormAlert, NewPasswordField, PasswordField } from '../../../components/ui';
import { ApiError } from '../../../lib/api';
import { splitFieldErrors } from '../../../lib/field-errors';
import { useForm, type FieldMessages } from '../../../lib/use-form';
import { resetPassword } from '../api/reset-password';

export interface ResetPasswordFormProps {
  token: string;
  /** the link expired or was used while the form was open */
  onTokenRejected: () => void;
  onReset: () => void;
}

const FIELDS = ['password', 'confirmPassword'] as const;

export function ResetPasswordForm({ token, onTokenRejected, onReset }: ResetPasswordFormProps) {
  const form = useForm({ password: '', confirmPassword: '' }, FIELDS);
  const { password, confirmPassword } = form.values;

  const submit = form.submit({
    check: () => {
      const fields: FieldMessages<(typeof FIELDS)[number]> = {};
      if (password === '') fields.password = 'Enter a new password.';
      if (confirmPassword === '') fields.confirmPassword = 'Enter the new password again.';
      else if (password !== confirmPassword) fields.confirmPassword = 'The two new passwords do not match.';
      return Object.keys(fields).length > 0 ? { fields } : undefined;
    },
    action: async () => {
      await resetPassword({ token, password, confirmPassword });
      onReset();
    },
    refused: (error) => {
      const code = error instanceof ApiError ? error.code : undefined;
      if (code === 'invalid_or_expired_token') {
        onTokenRejected();
        return {};
      }
      if (code === 'password_mismatch') return { fields: { confirmPassword: 'The two new passwords do not match.' } };
      const { fields, message } = splitFieldErrors(error, FIELDS, { password: 'password' });
      return { fields, message: code === 'weak_password' ? 'Choose a different password.' : message };
    },
  });

  return (
    <form class="form" noValidate onSubmit={submit}>
      <FormAlert>{form.message}</FormAlert>
      <NewPasswordField label="New password" {...form.field('password')} />
      <PasswordField label="Confirm new password" autocomplete="new-password" required {...form.field('confirmPassword')} />
      <FormActions submit="Set new password" pending={form.pending} pendingLabel="Saving…" />
    </form>
  );
}
