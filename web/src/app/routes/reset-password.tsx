import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { Link, useLocation } from 'wouter-preact';
import { FormAlert, Loading, PageHeader } from '../../components/ui';
import { verifyResetToken } from '../../features/recovery/api/verify-reset-token';
import { ResetComplete } from '../../features/recovery/components/reset-complete';
import { ResetPasswordForm } from '../../features/recovery/components/reset-password-form';
import { takeResetTokenFromLocation } from '../../features/recovery/utils/reset-token';
import { setSignInNotice } from '../../features/auth/sign-in-notice';
import { ApiError, NETWORK_ERROR, describeError } from '../../lib/api';

type Step =
  | { kind: 'checking' }
  | { kind: 'missing' }
  | { kind: 'invalid' }
  | { kind: 'unavailable'; message: string }
  | { kind: 'ready'; expiresAt: Date }
  | { kind: 'done' };

export function ResetPasswordRoute() {
  // Read once, on the first render, and removed from the address bar at the same moment.
  const [token] = useState(takeResetTokenFromLocation);
  const [step, setStep] = useState<Step>(token === null ? { kind: 'missing' } : { kind: 'checking' });
  const [, navigate] = useLocation();

  const verify = useCallback(async (): Promise<void> => {
    if (token === null) return;
    setStep({ kind: 'checking' });
    try {
      const { expiresAt } = await verifyResetToken(token);
      setStep({ kind: 'ready', expiresAt: new Date(expiresAt) });
    } catch (error) {
      setStep(isTemporary(error) ? { kind: 'unavailable', message: describeError(error) } : { kind: 'invalid' });
    }
  }, [token]);

  useEffect(() => {
    void verify();
  }, [verify]);

  switch (step.kind) {
    case 'checking':
      return (
        <Frame>
          <Loading label="Checking your reset link…" />
        </Frame>
      );
    case 'missing':
      return (
        <Frame title="Open the link from your email">
          <p>This page needs the link from your password reset email. Open that link again, or request a new one.</p>
          <RequestNewLink />
        </Frame>
      );
    case 'invalid':
      return (
        <Frame title="This link does not work">
          <FormAlert>This reset link is invalid or has expired.</FormAlert>
          <p>Reset links work once and only for a limited time. A newer request also replaces older links.</p>
          <RequestNewLink />
        </Frame>
      );
    case 'unavailable':
      return (
        <Frame>
          <FormAlert>{step.message}</FormAlert>
          <button type="button" class="button button-primary" onClick={() => void verify()}>
            Try again
          </button>
        </Frame>
      );
    case 'ready':
      return (
        <Frame>
          <p>
            Choose a new password for your account.
            {!Number.isNaN(step.expiresAt.getTime()) && (
              <>
                {' '}
                This link works until <time dateTime={step.expiresAt.toISOString()}>{formatTime(step.expiresAt)}</time>.
              </>
            )}
          </p>
          <ResetPasswordForm token={token!} onTokenRejected={() => setStep({ kind: 'invalid' })} onReset={() => setStep({ kind: 'done' })} />
        </Frame>
      );
    case 'done':
      return (
        <Frame title="Password changed">
          <ResetComplete
            onContinue={() => {
              setSignInNotice('Your password was changed. Sign in with the new one.');
              navigate('/login', { replace: true });
            }}
          />
        </Frame>
      );
  }
}

function Frame({ title = 'Choose a new password', children }: { title?: string; children: ComponentChildren }) {
  return (
    <section class="card card-narrow">
      <PageHeader title={title} documentTitle="Reset your password" />
      {children}
    </section>
  );
}

function RequestNewLink() {
  return (
    <p class="form-actions">
      <Link href="/forgot-password" class="button button-primary">
        Request a new link
      </Link>
      <Link href="/login" class="link">
        Back to sign in
      </Link>
    </p>
  );
}

/** Worth retrying as is: throttled, busy or unreachable. Anything else means the link does not work. */
function isTemporary(error: unknown): boolean {
  return error instanceof ApiError && (error.code === NETWORK_ERROR || error.status === 429 || error.status >= 500);
}

function formatTime(date: Date): string {
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}
