import { usePasswordPolicy } from '../../lib/password-policy';
import { PasswordField, type PasswordFieldProps } from './field';
import { PasswordLengthFeedback } from './password-length-feedback';

/** The field where a person chooses a password: what is refused, and live length feedback as they type. */
export function NewPasswordField(props: Omit<PasswordFieldProps, 'autocomplete' | 'required' | 'hint' | 'feedback'>) {
  const policy = usePasswordPolicy();
  return (
    <PasswordField
      {...props}
      autocomplete="new-password"
      required
      hint="Use a long passphrase you do not use anywhere else. Common passwords, sequences and passwords built from your email or username are refused."
      feedback={<PasswordLengthFeedback password={props.value} policy={policy} />}
    />
  );
}
