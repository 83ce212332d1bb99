import { FormActions, FormAlert, NewPasswordField, PasswordField } from '../../../components/ui';
import { ApiError } from '../../../lib/api';
import { splitFieldErrors } from '../../../lib/field-errors';
import { useForm, type FieldMessages } from '../../../lib/use-form';
import { changePassword } from '../api/change-password';
import { setSignInNotice } from '../sign-in-notice';

export interface ChangePasswordFormProps {
  onChanged: () => void;
}

const FIELDS = ['currentPassword', 'newPassword', 'confirmPassword'] as const;

export function ChangePasswordForm({ onChanged }: ChangePasswordFormProps) {
  const form = useForm({ currentPassword: '', newPassword: '', confirmPassword: '' }, FIELDS);
  const { currentPassword, newPassword, confirmPassword } = form.values;

  const submit = form.submit({
    check: () => {
      const fields: FieldMessages<(typeof FIELDS)[number]> = {};
      if (currentPassword === '') fields.currentPassword = 'Enter your current password.';
      if (newPassword === '') fields.newPassword = 'Enter a new password.';
      if (confirmPassword === '') fields.confirmPassword = 'Enter the new password again.';
      else if (newPassword !== confirmPassword) fields.confirmPassword = 'The two new passwords do not match.';
      return Object.keys(fields).length > 0 ? { fields } : undefined;
    },
    action: async () => {
      await changePassword({ currentPassword, newPassword });
      onChanged();
    },
    refused: (error) => {
      if (error instanceof ApiError && error.status === 401) {
        // The server ended the session (10 wrong current passwords in a row, or it had expired): the
        // app is already on its way to the sign-in page, which says why.
        setSignInNotice(error.message);
        return {};
      }
      if (error instanceof ApiError && error.code === 'invalid_current_password') return { fields: { currentPassword: 'The current password is not correct.' } };
      const { fields, message } = splitFieldErrors(error, FIELDS, { password: 'newPassword' });
      return { fields, message: error instanceof ApiError && error.code === 'weak_password' ? 'Choose a different new password.' : message };
    },
  });

  return (
    <form class="form" noValidate onSubmit={submit}>
      <FormAlert>{form.message}</FormAlert>
      <PasswordField label="Current password" autocomplete="current-password" required {...form.field('currentPassword')} />
      <NewPasswordField label="New password" {...form.field('newPassword')} />
      <PasswordField label="Confirm new password" autocomplete="new-password" required {...form.field('confirmPassword')} />
      <FormActions submit="Change password" pending={form.pending} pendingLabel="Changing password…" />
    </form>
  );
}
