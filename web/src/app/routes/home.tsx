import { useEffect, useState } from 'preact/hooks';
import { Link, useLocation } from 'wouter-preact';
import { Button, FormAlert, Loading, Notice, PageHeader } from '../../components/ui';
import { signOutEverywhere } from '../../features/auth/api/sign-out-everywhere';
import { setSignInNotice } from '../../features/auth/sign-in-notice';
import { DeliveryTargetLine } from '../../features/mail/components/delivery-target-line';
import { getUsers } from '../../features/users/api/get-users';
import { ApiError, describeError } from '../../lib/api';
import { ROLE_LABELS, signInNameOf, type User } from '../../types/api';
import { isAdmin, useSession } from '../session';

export function HomeRoute() {
  const { state } = useSession();
  const user = state.user;
  if (user === null) return null;

  return (
    <>
      <PageHeader title={`Welcome, ${user.name}`} documentTitle="Home" />
      <section class="card" aria-labelledby="account-heading">
        <h2 id="account-heading">Your account</h2>
        <dl class="details">
          <div>
            <dt>Name</dt>
            <dd>{user.name}</dd>
          </div>
          <div>
            <dt>Sign-in name</dt>
            <dd>{signInNameOf(user)}</dd>
          </div>
          {user.email !== null && user.username !== null && (
            <div>
              <dt>Email</dt>
              <dd>{user.email}</dd>
            </div>
          )}
          <div>
            <dt>Role</dt>
            <dd>{ROLE_LABELS[user.role]}</dd>
          </div>
        </dl>
        <p>
          <Link href="/change-password" class="link">
            Change your password
          </Link>
        </p>
      </section>
      <SessionsSection />
      {isAdmin(user) && <AdminSummary />}
    </>
  );
}

function SessionsSection() {
  const { setUser } = useSession();
  const [, navigate] = useLocation();
  const [pending, setPending] = useState(false);
  const [error, setError] = useState('');

  async function signOutOnEveryDevice(): Promise<void> {
    if (pending) return;
    setPending(true);
    setError('');
    try {
      await signOutEverywhere();
    } catch (err) {
      setPending(false);
      // A 401 means this session had already ended: the app is on its way to the sign-in page.
      if (!(err instanceof ApiError && err.status === 401)) setError(describeError(err));
      return;
    }
    setSignInNotice('You were signed out on every device.');
    // Same tick, as the header's Sign out does: the next render already sees the sign-in page.
    navigate('/login');
    setUser(null);
  }

  return (
    <section class="card" aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Your sessions</h2>
      <p>Lost a device, or signed in on a shared computer? Sign out everywhere ends every session of your account, this one included.</p>
      <FormAlert>{error}</FormAlert>
      <div class="form-actions">
        <Button variant="secondary" pending={pending} pendingLabel="Signing out…" onClick={() => void signOutOnEveryDevice()}>
          Sign out everywhere
        </Button>
      </div>
    </section>
  );
}

function AdminSummary() {
  const [users, setUsers] = useState<User[] | null>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    let live = true;
    getUsers().then(
      (list) => live && setUsers(list),
      (err: unknown) => live && setError(describeError(err)),
    );
    return () => {
      live = false;
    };
  }, []);

  const adminsWithEmail = users?.filter((u) => u.role === 'system-admin' && !u.disabled && u.email !== null).length ?? 0;

  return (
    <section class="card" aria-labelledby="admin-heading">
      <h2 id="admin-heading">Administration</h2>
      <FormAlert>{error}</FormAlert>
      {users === null ? (
        error === '' && <Loading label="Counting users…" />
      ) : (
        <>
          <p>
            {users.length === 1 ? 'There is 1 user.' : `There are ${users.length} users.`}{' '}
            <Link href="/users" class="link">
              Manage users
            </Link>
          </p>
          <DeliveryTargetLine />
          {adminsWithEmail === 0 && (
            <Notice tone="warning">
              <p>
                <strong>Add a system admin with a real email so password recovery works.</strong> No enabled system admin has an email
                address, so no admin can reset a forgotten password by email.
              </p>
            </Notice>
          )}
        </>
      )}
    </section>
  );
}
