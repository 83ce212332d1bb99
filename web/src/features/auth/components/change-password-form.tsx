import { useRef, useState } from 'preact/hooks';
import { Button, FormAlert, PasswordField, PasswordLengthFeedback } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import { usePasswordPolicy } from '../../../lib/password-policy';
import { changePassword } from '../api/change-password';
import { setSignInNotice } from '../sign-in-notice';

export interface ChangePasswordFormProps {
  onChanged: () => void;
}

interface Errors {
  currentPassword?: string;
  newPassword?: string | string[];
  confirmPassword?: string;
}

export function ChangePasswordForm({ onChanged }: ChangePasswordFormProps) {
  const [currentPassword, setCurrentPassword] = useState('');
  const [newPassword, setNewPassword] = useState('');
  const [confirmPassword, setConfirmPassword] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState('');
  const [pending, setPending] = useState(false);
  const policy = usePasswordPolicy();
  const refs = {
    currentPassword: useRef<HTMLInputElement>(null),
    newPassword: useRef<HTMLInputElement>(null),
    confirmPassword: useRef<HTMLInputElement>(null),
  };

  function show(found: Errors, message = ''): void {
    setErrors(found);
    setFormError(message);
    const first = (['currentPassword', 'newPassword', 'confirmPassword'] as const).find((k) => found[k] !== undefined);
    if (first) refs[first].current?.focus();
  }

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    if (pending) return;
    const found: Errors = {};
    if (currentPassword === '') found.currentPassword = 'Enter your current password.';
    if (newPassword === '') found.newPassword = 'Enter a new password.';
    if (confirmPassword === '') found.confirmPassword = 'Enter the new password again.';
    else if (newPassword !== confirmPassword) found.confirmPassword = 'The two new passwords do not match.';
    if (Object.keys(found).length > 0) return show(found);

    setPending(true);
    show({});
    try {
      await changePassword({ currentPassword, newPassword });
      onChanged();
    } catch (error) {
      setPending(false);
      if (error instanceof ApiError && error.status === 401) {
        // The server ended the session (10 wrong current passwords in a row, or it had expired): the
        // app is already on its way to the sign-in page, which says why.
        setSignInNotice(error.message);
      } else if (error instanceof ApiError && error.code === 'invalid_current_password') {
        show({ currentPassword: 'The current password is not correct.' });
      } else if (error instanceof ApiError && error.code === 'weak_password') {
        show({ newPassword: error.reasons.length > 0 ? error.reasons.map((r) => r.message) : error.message }, 'Choose a different new password.');
      } else {
        show({}, describeError(error));
      }
    }
  }

  return (
    <form class="form" noValidate onSubmit={submit}>
      <FormAlert>{formError}</FormAlert>
      <PasswordField
        label="Current password"
        autocomplete="current-password"
        required
        value={currentPassword}
        onValue={setCurrentPassword}
        error={errors.currentPassword}
        inputRef={refs.currentPassword}
      />
      <PasswordField
        label="New password"
        autocomplete="new-password"
        required
        hint="Use a long passphrase you do not use anywhere else. Common passwords, sequences and passwords built from your email or username are refused."
        value={newPassword}
        onValue={setNewPassword}
        error={errors.newPassword}
        feedback={<PasswordLengthFeedback password={newPassword} policy={policy} />}
        inputRef={refs.newPassword}
      />
      <PasswordField
        label="Confirm new password"
        autocomplete="new-password"
        required
        value={confirmPassword}
        onValue={setConfirmPassword}
        error={errors.confirmPassword}
        inputRef={refs.confirmPassword}
      />
      <div class="form-actions">
        <Button type="submit" pending={pending} pendingLabel="Changing password…">
          Change password
        </Button>
      </div>
    </form>
  );
}
