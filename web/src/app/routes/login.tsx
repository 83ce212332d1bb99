import { Link, Redirect, useLocation, useSearch } from 'wouter-preact';
import { PageHeader, StatusMessage } from '../../components/ui';
import { SignInForm } from '../../features/auth/components/sign-in-form';
import { useSignInNotice } from '../../features/auth/sign-in-notice';
import { safeReturnPath } from '../../lib/safe-path';
import type { User } from '../../types/api';
import { useSession } from '../session';

export function LoginRoute() {
  const { state, setUser } = useSession();
  const [, navigate] = useLocation();
  const next = safeReturnPath(new URLSearchParams(useSearch()).get('next'));
  const destination = (user: User): string => (user.mustChangePassword ? '/change-password' : next);
  // e.g. "You were signed out on every device."
  const notice = useSignInNotice();

  if (state.status === 'signed-in') return <Redirect to={destination(state.user)} replace />;

  return (
    <section class="card card-narrow">
      <PageHeader title="Sign in" />
      <StatusMessage>{notice}</StatusMessage>
      <SignInForm
        onSignedIn={(user) => {
          navigate(destination(user), { replace: true });
          setUser(user);
        }}
        forgotPasswordLink={() => (
          <Link href="/forgot-password" class="link">
            Forgot password?
          </Link>
        )}
      />
    </section>
  );
}
