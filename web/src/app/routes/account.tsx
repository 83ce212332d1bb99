import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { Button, FormAlert, Loading, PageHeader, StatusMessage } from '../../components/ui';
import { getSessions } from '../../features/account/api/get-sessions';
import { signOutOtherSessions } from '../../features/account/api/sign-out-other-sessions';
import { signOutSession } from '../../features/account/api/sign-out-session';
import { NameForm } from '../../features/account/components/name-form';
import { SessionsList } from '../../features/account/components/sessions-list';
import { ApiError, describeError } from '../../lib/api';
import { ROLE_LABELS, type AccountSession } from '../../types/api';
import { useSession } from '../session';

/** "My account": any signed-in user's details, name and sessions. Loaded lazily. */
export default function AccountRoute() {
  const { state, setUser, signOut } = useSession();
  const me = state.user;
  const [sessions, setSessions] = useState<AccountSession[] | null>(null);
  const [loadError, setLoadError] = useState('');
  const [actionError, setActionError] = useState('');
  const [status, setStatus] = useState('');
  const [signingOut, setSigningOut] = useState<string | null>(null);
  const [signingOutOthers, setSigningOutOthers] = useState(false);

  async function load(): Promise<void> {
    try {
      setSessions(await getSessions());
      setLoadError('');
    } catch (error) {
      setLoadError(describeError(error));
    }
  }

  useEffect(() => {
    void load();
  }, []);

  if (me === null) return null;

  async function signOutOne(session: AccountSession): Promise<void> {
    if (signingOut !== null) return;
    setStatus('');
    setActionError('');
    if (session.current) return signOut();
    setSigningOut(session.id);
    try {
      await signOutSession(session.id);
      setStatus(`Signed out ${session.device}.`);
    } catch (error) {
      // Already gone (it expired, or was signed out elsewhere): the list below shows what is left.
      if (!(error instanceof ApiError && error.code === 'not_found')) setActionError(describeError(error));
    } finally {
      setSigningOut(null);
    }
    await load();
  }

  async function signOutOthers(): Promise<void> {
    if (signingOutOthers) return;
    setStatus('');
    setActionError('');
    setSigningOutOthers(true);
    try {
      await signOutOtherSessions();
      setStatus('Signed out every other session. Only this browser is still signed in.');
    } catch (error) {
      setActionError(describeError(error));
    } finally {
      setSigningOutOthers(false);
    }
    await load();
  }

  const others = sessions?.filter((s) => !s.current).length ?? 0;

  return (
    <>
      <PageHeader title="My account" />
      <StatusMessage tone="success">{status}</StatusMessage>
      <section class="card" aria-labelledby="details-heading">
        <h2 id="details-heading">Your details</h2>
        <dl class="details">
          <div>
            <dt>Name</dt>
            <dd>{me.name}</dd>
          </div>
          <div>
            <dt>Email</dt>
            <dd>{me.email ?? <span class="muted">none</span>}</dd>
          </div>
          <div>
            <dt>Username</dt>
            <dd>{me.username ?? <span class="muted">none</span>}</dd>
          </div>
          <div>
            <dt>Role</dt>
            <dd>{ROLE_LABELS[me.role]}</dd>
          </div>
        </dl>
        <p>
          <Link href="/change-password" class="link">
            Change your password
          </Link>
        </p>
        <NameForm
          user={me}
          onSaved={(saved) => {
            setUser({ ...me, ...saved });
            setStatus(`Your name is now ${saved.name}.`);
          }}
        />
      </section>
      <section class="card" aria-labelledby="sessions-heading">
        <h2 id="sessions-heading">Where you are signed in</h2>
        <p class="muted">Places are shown by network address. Sign out any session you do not recognise, then change your password.</p>
        <FormAlert>{loadError || actionError}</FormAlert>
        {sessions === null ? (
          loadError === '' && <Loading label="Loading sessions…" />
        ) : (
          <>
            <SessionsList sessions={sessions} signingOut={signingOut} onSignOut={(session) => void signOutOne(session)} />
            {others > 0 && (
              <Button variant="danger" pending={signingOutOthers} pendingLabel="Signing out…" onClick={() => void signOutOthers()}>
                Sign out all other sessions
              </Button>
            )}
          </>
        )}
      </section>
    </>
  );
}
