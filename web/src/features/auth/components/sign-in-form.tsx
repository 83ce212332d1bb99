import type { ComponentChildren } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { Button, FormAlert, PasswordField, TextField } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import type { User } from '../../../types/api';
import { signIn } from '../api/sign-in';

export interface SignInFormProps {
  onSignedIn: (user: User) => void;
  /** where "Forgot password?" leads; rendered by the page so the link stays a router link */
  forgotPasswordLink: ComponentChildren;
}

interface Errors {
  login?: string;
  password?: string;
}

export function SignInForm({ onSignedIn, forgotPasswordLink }: SignInFormProps) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState('');
  const [pending, setPending] = useState(false);
  const loginRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    if (pending) return;
    const found: Errors = {};
    if (login.trim() === '') found.login = 'Enter your email or username.';
    if (password === '') found.password = 'Enter your password.';
    setErrors(found);
    setFormError('');
    if (found.login || found.password) {
      (found.login ? loginRef : passwordRef).current?.focus();
      return;
    }
    setPending(true);
    try {
      const user = await signIn({ login: login.trim(), password });
      onSignedIn(user);
    } catch (error) {
      setPending(false);
      setFormError(signInErrorMessage(error));
    }
  }

  return (
    <form class="form" noValidate onSubmit={submit}>
      <FormAlert>{formError}</FormAlert>
      <TextField
        label="Email or username"
        name="username"
        autocomplete="username"
        autocapitalize="off"
        spellcheck={false}
        required
        value={login}
        onValue={setLogin}
        error={errors.login}
        inputRef={loginRef}
      />
      <PasswordField
        label="Password"
        name="password"
        autocomplete="current-password"
        required
        value={password}
        onValue={setPassword}
        error={errors.password}
        inputRef={passwordRef}
      />
      <div class="form-actions">
        <Button type="submit" pending={pending} pendingLabel="Signing in…">
          Sign in
        </Button>
        {forgotPasswordLink}
      </div>
    </form>
  );
}

function signInErrorMessage(error: unknown): string {
  if (error instanceof ApiError && error.code === 'invalid_credentials') return 'The sign-in name or password is not correct.';
  return describeError(error);
}
