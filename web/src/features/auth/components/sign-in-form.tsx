import type { VNode } from 'preact';
import { FormActions, FormAlert, PasswordField, TextField } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import { useForm, type FieldMessages } from '../../../lib/use-form';
import type { User } from '../../../types/api';
import { signIn } from '../api/sign-in';

export interface SignInFormProps {
  onSignedIn: (user: User) => void;
  /** the "Forgot password?" link, made by the page so it stays a router link; shown under the form, and in the alert of a locked sign-in */
  forgotPasswordLink: () => VNode;
}

export function SignInForm({ onSignedIn, forgotPasswordLink }: SignInFormProps) {
  const form = useForm({ login: '', password: '' }, ['login', 'password']);
  const { login, password } = form.values;

  const submit = form.submit({
    check: () => {
      const fields: FieldMessages<'login' | 'password'> = {};
      if (login.trim() === '') fields.login = 'Enter your email or username.';
      if (password === '') fields.password = 'Enter your password.';
      return Object.keys(fields).length > 0 ? { fields } : undefined;
    },
    action: async () => onSignedIn(await signIn({ login: login.trim(), password })),
    refused: (error) => {
      const message = signInErrorMessage(error);
      // Locked: the way back in is a reset (or an admin), so the link is right where the reason is read.
      return { message: error instanceof ApiError && error.code === 'sign_in_locked' ? <>{message} {forgotPasswordLink()}</> : message };
    },
  });

  return (
    <form class="form" noValidate onSubmit={submit}>
      <FormAlert>{form.message}</FormAlert>
      <TextField label="Email or username" name="username" autocomplete="username" autocapitalize="off" spellcheck={false} required {...form.field('login')} />
      <PasswordField label="Password" name="password" autocomplete="current-password" required {...form.field('password')} />
      <FormActions submit="Sign in" pending={form.pending} pendingLabel="Signing in…">
        {forgotPasswordLink()}
      </FormActions>
    </form>
  );
}

/** The server's words for a wrong password and for a locked sign-in; how long to wait on 429 and 503 (describeError). */
function signInErrorMessage(error: unknown): string {
  if (error instanceof ApiError && error.code === 'invalid_credentials') return 'The sign-in name or password is not correct.';
  return describeError(error);
}
