import { Link, useLocation } from 'wouter-preact';
import { Notice, PageHeader } from '../../components/ui';
import { ChangePasswordForm } from '../../features/auth/components/change-password-form';
import { useSession } from '../session';

export function ChangePasswordRoute() {
  const { state, setUser } = useSession();
  const [, navigate] = useLocation();
  const user = state.user;
  if (user === null) return null;

  return (
    <section class="card card-narrow">
      <PageHeader title="Change your password" documentTitle="Change password" />
      {user.mustChangePassword ? (
        <Notice tone="warning">
          <p>You must choose a new password before you continue.</p>
        </Notice>
      ) : (
        <p>Your other sessions are signed out when the password changes.</p>
      )}
      <ChangePasswordForm
        onChanged={() => {
          navigate('/', { replace: true });
          setUser({ ...user, mustChangePassword: false });
        }}
      />
      {!user.mustChangePassword && (
        <p>
          <Link href="/" class="link">
            Cancel
          </Link>
        </p>
      )}
    </section>
  );
}
