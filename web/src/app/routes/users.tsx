import { useEffect, useState } from 'preact/hooks';
import { FormAlert, Loading, PageHeader, StatusMessage } from '../../components/ui';
import { getUsers } from '../../features/users/api/get-users';
import { sendResetLink } from '../../features/users/api/send-reset-link';
import { unlockUser } from '../../features/users/api/unlock-user';
import { CreateUserForm } from '../../features/users/components/create-user-form';
import { DeleteUserDialog } from '../../features/users/components/delete-user-dialog';
import { EditUserDialog } from '../../features/users/components/edit-user-dialog';
import { sendResetErrorMessage, unlockErrorMessage } from '../../features/users/components/user-errors';
import { UsersTable } from '../../features/users/components/users-table';
import { describeError } from '../../lib/api';
import type { User } from '../../types/api';
import { useSession } from '../session';

type Open = { kind: 'edit'; user: User } | { kind: 'delete'; user: User } | null;

/** Loaded lazily: only system admins ever download this page. */
export default function UsersRoute() {
  const { state, setUser } = useSession();
  const [users, setUsers] = useState<User[] | null>(null);
  const [loadError, setLoadError] = useState('');
  const [open, setOpen] = useState<Open>(null);
  const [status, setStatus] = useState('');
  const [actionError, setActionError] = useState('');
  const [sendingResetTo, setSendingResetTo] = useState<string | null>(null);
  const [unlocking, setUnlocking] = useState<string | null>(null);
  const me = state.user;

  useEffect(() => {
    let live = true;
    getUsers().then(
      (list) => live && setUsers(list),
      (error: unknown) => live && setLoadError(describeError(error)),
    );
    return () => {
      live = false;
    };
  }, []);

  if (me === null) return null;

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
      const unlocked = await unlockUser(user.id);
      setUsers((list) => (list ?? []).map((u) => (u.id === unlocked.id ? unlocked : u)));
      setStatus(`Unlocked ${unlocked.name}. They can sign in again.`);
    } catch (error) {
      setActionError(unlockErrorMessage(error, user));
    } finally {
      setUnlocking(null);
    }
  }

  return (
    <>
      <PageHeader title="Users" />
      <StatusMessage tone="success">{status}</StatusMessage>
      <section class="card" aria-labelledby="users-heading">
        <h2 id="users-heading">All users</h2>
        <FormAlert>{loadError || actionError}</FormAlert>
        {users === null ? (
          loadError === '' && <Loading label="Loading users…" />
        ) : (
          <UsersTable
            users={users}
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
        )}
      </section>
      <section class="card">
        <CreateUserForm onCreated={(user) => setUsers((list) => [...(list ?? []), user])} />
      </section>
      {open?.kind === 'edit' && (
        <EditUserDialog
          user={open.user}
          onClose={() => setOpen(null)}
          onSaved={(saved) => {
            setUsers((list) => (list ?? []).map((u) => (u.id === saved.id ? saved : u)));
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
            setUsers((list) => (list ?? []).filter((u) => u.id !== deleted.id));
            setOpen(null);
            setStatus(`Deleted ${deleted.name}.`);
          }}
        />
      )}
    </>
  );
}
