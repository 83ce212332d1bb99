import type { ComponentChildren } from 'preact';
import { Link, Redirect, useLocation } from 'wouter-preact';
import { FormAlert, Loading, PageHeader } from '../components/ui';
import { BRAND_NAME } from '../lib/brand';
import { isAdmin, useSession } from './session';

export interface RequireSessionProps {
  /** system admins only */
  admin?: boolean;
  /** the change-password page itself stays reachable while a change is required */
  allowPasswordChangeRequired?: boolean;
  children: ComponentChildren;
}

/** Pages for signed-in people: sends others to sign in, and anyone who must change their password to do so first. */
export function RequireSession({ admin = false, allowPasswordChangeRequired = false, children }: RequireSessionProps) {
  const { state, refresh } = useSession();
  const [location] = useLocation();

  if (state.status === 'loading') return <Loading />;
  if (state.status === 'error') {
    return (
      <>
        <PageHeader title={`Cannot reach ${BRAND_NAME}`} />
        <FormAlert>The server did not answer. Check your connection and try again.</FormAlert>
        <button type="button" class="button button-primary" onClick={() => void refresh()}>
          Try again
        </button>
      </>
    );
  }
  if (state.user === null) {
    const next = location === '/' ? '' : `?next=${encodeURIComponent(location + window.location.search)}`;
    return <Redirect to={`/login${next}`} replace />;
  }
  if (state.user.mustChangePassword && !allowPasswordChangeRequired) return <Redirect to="/change-password" replace />;
  if (admin && !isAdmin(state.user)) return <NoAccess />;
  return <>{children}</>;
}

export function NoAccess() {
  return (
    <section class="card">
      <PageHeader title="You do not have access" />
      <p>This page is for system admins. Ask a system admin if you need something changed.</p>
      <p>
        <Link href="/" class="link">
          Go to the home page
        </Link>
      </p>
    </section>
  );
}
