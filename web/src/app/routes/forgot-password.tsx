import { Link } from 'wouter-preact';
import { PageHeader } from '../../components/ui';
import { ForgotPasswordForm } from '../../features/recovery/components/forgot-password-form';
import { DevMailboxLink } from '../dev-mailbox-link';

export function ForgotPasswordRoute() {
  return (
    <section class="card card-narrow">
      <PageHeader title="Forgot your password?" documentTitle="Forgot password" />
      <ForgotPasswordForm
        afterSent={<DevMailboxLink />}
        backToSignIn={
          <Link href="/login" class="link">
            Back to sign in
          </Link>
        }
      />
    </section>
  );
}
