import type { VNode } from 'preact';
import { useRef, useState } from 'preact/hooks';
import { Button, FormAlert, PasswordField, TextField } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import type { User } from '../../../types/api';
import { signIn } from '../api/sign-in';

export interface SignInFormProps {
  onSignedIn: (user: User) => void;
  /** the "Forgot password?" link, made by the page so it stays a router link; shown under the form, and in the alert of a locked sign-in */
  forgotPasswordLink: () => VNode;
}

interface Errors {
  login?: string;
  password?: string;
}

export function SignInForm({ onSignedIn, forgotPasswordLink }: SignInFormProps) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<FormError>(NO_ERROR);
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
    setFormError(NO_ERROR);
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
      setFormError({ message: signInErrorMessage(error), locked: error instanceof ApiError && error.code === 'sign_in_locked' });
    }
  }

  return (
    <form class="form" noValidate onSubmit={submit}>
      <FormAlert>
        {formError.message !== '' && (
          <>
            {formError.message}
            {/* Locked: the way back in is a reset (or an admin), so the link is right where the reason is read. */}
            {formError.locked && <> {forgotPasswordLink()}</>}
          </>
        )}
      </FormAlert>
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
        {forgotPasswordLink()}
      </div>
    </form>
  );
}

interface FormError {
  message: string;
  /** 403 sign_in_locked */
  locked: boolean;
}

const NO_ERROR: FormError = { message: '', locked: false };

/** The server's words for a wrong password and for a locked sign-in; how long to wait on 429 and 503 (describeError). */
function signInErrorMessage(error: unknown): string {
  if (error instanceof ApiError && error.code === 'invalid_credentials') return 'The sign-in name or password is not correct.';
  return describeError(error);
}
