import { useRef, useState } from 'preact/hooks';
import { Button, FormAlert, PasswordField, PasswordLengthFeedback } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import { usePasswordPolicy } from '../../../lib/password-policy';
import { resetPassword } from '../api/reset-password';

export interface ResetPasswordFormProps {
  token: string;
  /** the link expired or was used while the form was open */
  onTokenRejected: () => void;
  onReset: () => void;
}

interface Errors {
  password?: string | string[];
  confirmPassword?: string;
}

export function ResetPasswordForm({ token, onTokenRejected, onReset }: ResetPasswordFormProps) {
  const [password, setPassword] = useState('');
  const [confirmPassword, setConfirmPassword] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState('');
  const [pending, setPending] = useState(false);
  const policy = usePasswordPolicy();
  const passwordRef = useRef<HTMLInputElement>(null);
  const confirmRef = useRef<HTMLInputElement>(null);

  function show(found: Errors, message = ''): void {
    setErrors(found);
    setFormError(message);
    if (found.password !== undefined) passwordRef.current?.focus();
    else if (found.confirmPassword !== undefined) confirmRef.current?.focus();
  }

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    if (pending) return;
    const found: Errors = {};
    if (password === '') found.password = 'Enter a new password.';
    if (confirmPassword === '') found.confirmPassword = 'Enter the new password again.';
    else if (password !== confirmPassword) found.confirmPassword = 'The two passwords do not match.';
    if (Object.keys(found).length > 0) return show(found);

    setPending(true);
    show({});
    try {
      await resetPassword({ token, password, confirmPassword });
      onReset();
    } catch (error) {
      setPending(false);
      if (!(error instanceof ApiError)) return show({}, describeError(error));
      if (error.code === 'invalid_or_expired_token') return onTokenRejected();
      if (error.code === 'password_mismatch') return show({ confirmPassword: 'The two passwords do not match.' });
      if (error.code === 'weak_password') {
        return show({ password: error.reasons.length > 0 ? error.reasons.map((r) => r.message) : error.message }, 'Choose a different password.');
      }
      show({}, describeError(error));
    }
  }

  return (
    <form class="form" noValidate onSubmit={submit}>
      <FormAlert>{formError}</FormAlert>
      <PasswordField
        label="New password"
        autocomplete="new-password"
        required
        hint="Use a long passphrase you do not use anywhere else. Common passwords, sequences and passwords built from your email or username are refused."
        value={password}
        onValue={setPassword}
        error={errors.password}
        feedback={<PasswordLengthFeedback password={password} policy={policy} />}
        inputRef={passwordRef}
      />
      <PasswordField
        label="Confirm password"
        autocomplete="new-password"
        required
        value={confirmPassword}
        onValue={setConfirmPassword}
        error={errors.confirmPassword}
        inputRef={confirmRef}
      />
      <div class="form-actions">
        <Button type="submit" pending={pending} pendingLabel="Saving…">
          Set new password
        </Button>
      </div>
    </form>
  );
}
