import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { FormAlert, Loading, LoadMore, PageHeader, StatusMessage } from '../../components/ui';
import { listUsers, type UserFilter } from '../../features/users/api/list-users';
import { sendResetLink } from '../../features/users/api/send-reset-link';
import { unlockUser } from '../../features/users/api/unlock-user';
import { CreateUserForm } from '../../features/users/components/create-user-form';
import { DeleteUserDialog } from '../../features/users/components/delete-user-dialog';
import { EditUserDialog } from '../../features/users/components/edit-user-dialog';
import { UserFilters } from '../../features/users/components/user-filters';
import { sendResetErrorMessage, unlockErrorMessage } from '../../features/users/components/user-errors';
import { UsersTable } from '../../features/users/components/users-table';
import { describeError } from '../../lib/api';
import type { User } from '../../types/api';
import { useSession } from '../session';

type Open = { kind: 'edit'; user: User } | { kind: 'delete'; user: User } | null;

/** Users per page, ordered by name. */
const PAGE_SIZE = 50;

interface Listing {
  users: User[];
  total: number;
  nextCursor: string | undefined;
}

/** Loaded lazily: only system admins ever download this page. */
export default function UsersRoute() {
  const { state, setUser } = useSession();
  const [listing, setListing] = useState<Listing | null>(null);
  const [filter, setFilter] = useState<UserFilter>({});
  const [loading, setLoading] = useState(false);
  const [loadError, setLoadError] = useState('');
  const [open, setOpen] = useState<Open>(null);
  const [status, setStatus] = useState('');
  const [actionError, setActionError] = useState('');
  const [sendingResetTo, setSendingResetTo] = useState<string | null>(null);
  const [unlocking, setUnlocking] = useState<string | null>(null);
  // A newer request wins: an answer for an older filter arriving late is dropped.
  const generation = useRef(0);
  const me = state.user;

  const load = useCallback(async (next: UserFilter, after: string | undefined, current: Listing | null): Promise<void> => {
    const run = ++generation.current;
    setLoading(true);
    setLoadError('');
    try {
      const page = await listUsers(next, { limit: PAGE_SIZE, after });
      if (run !== generation.current) return;
      setListing({
        users: after === undefined || current === null ? page.users : [...current.users, ...page.users],
        total: page.total,
        nextCursor: page.nextCursor,
      });
    } catch (error) {
      if (run === generation.current) setLoadError(describeError(error));
    } finally {
      if (run === generation.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    void load(filter, undefined, null);
  }, [filter, load]);

  if (me === null) return null;

  const replace = (user: User) => setListing((l) => l && { ...l, users: l.users.map((u) => (u.id === user.id ? user : u)) });

  async function sendReset(user: User): Promise<void> {
    if (sendingResetTo !== null) return;
    setStatus('');
    setActionError('');
    setSendingResetTo(user.id);
    try {
      await sendResetLink(user.id);
      setStatus(`Reset link sent to ${user.email ?? user.name}. The Mail page shows its delivery.`);
    } catch (error) {
      setActionError(sendResetErrorMessage(error, user));
    } finally {
      setSendingResetTo(null);
    }
  }

  async function unlock(user: User): Promise<void> {
    if (unlocking !== null) return;
    setStatus('');
    setActionError('');
    setUnlocking(user.id);
    try {
      replace(await unlockUser(user.id));
      setStatus(`Unlocked ${user.name}. They can sign in again.`);
    } catch (error) {
      setActionError(unlockErrorMessage(error, user));
    } finally {
      setUnlocking(null);
    }
  }

  const filtered = filter.q !== undefined || filter.role !== undefined || filter.status !== undefined;
  const shown = listing?.users.length ?? 0;

  return (
    <>
      <PageHeader title="Users" />
      <StatusMessage tone="success">{status}</StatusMessage>
      <section class="card" aria-labelledby="users-heading">
        <h2 id="users-heading">All users</h2>
        <UserFilters onChange={setFilter} />
        <p class="muted users-summary" aria-live="polite">
          {listing === null
            ? ''
            : listing.total === 0
              ? filtered
                ? 'No user matches.'
                : 'No users yet.'
              : `Showing ${shown} of ${listing.total} ${listing.total === 1 ? 'user' : 'users'}${filtered ? ' that match' : ''}.`}
        </p>
        <FormAlert>{loadError || actionError}</FormAlert>
        {listing === null ? (
          loadError === '' && <Loading label="Loading users…" />
        ) : (
          listing.users.length > 0 && (
            <>
              <UsersTable
                users={listing.users}
                currentUserId={me.id}
                sendingResetTo={sendingResetTo}
                onSendReset={(user) => void sendReset(user)}
                unlocking={unlocking}
                onUnlock={(user) => void unlock(user)}
                onEdit={(user) => {
                  setStatus('');
                  setActionError('');
                  setOpen({ kind: 'edit', user });
                }}
                onDelete={(user) => {
                  setStatus('');
                  setActionError('');
                  setOpen({ kind: 'delete', user });
                }}
              />
              <LoadMore
                hasMore={listing.nextCursor !== undefined}
                pending={loading}
                onLoadMore={() => void load(filter, listing.nextCursor, listing)}
                endText={filtered ? 'That is every user that matches.' : 'That is every user.'}
              />
            </>
          )
        )}
      </section>
      <section class="card">
        <CreateUserForm
          onCreated={(user) => setListing((l) => (l === null ? l : { ...l, users: [...l.users, user], total: l.total + 1 }))}
        />
      </section>
      {open?.kind === 'edit' && (
        <EditUserDialog
          user={open.user}
          isSelf={open.user.id === me.id}
          onClose={() => setOpen(null)}
          onSaved={(saved) => {
            replace(saved);
            if (saved.id === me.id) setUser({ ...me, ...saved });
            setOpen(null);
            setStatus(`Saved changes to ${saved.name}.`);
          }}
        />
      )}
      {open?.kind === 'delete' && (
        <DeleteUserDialog
          user={open.user}
          onClose={() => setOpen(null)}
          onDeleted={(deleted) => {
            setListing((l) => l && { ...l, users: l.users.filter((u) => u.id !== deleted.id), total: Math.max(0, l.total - 1) });
            setOpen(null);
            setStatus(`Deleted ${deleted.name}.`);
          }}
        />
      )}
    </>
  );
}
