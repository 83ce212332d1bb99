import { useEffect, useState } from 'preact/hooks';
import { FormAlert, Loading, PageHeader, StatusMessage } from '../../components/ui';
import { getUsers } from '../../features/users/api/get-users';
import { CreateUserForm } from '../../features/users/components/create-user-form';
import { DeleteUserDialog } from '../../features/users/components/delete-user-dialog';
import { EditUserDialog } from '../../features/users/components/edit-user-dialog';
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

  return (
    <>
      <PageHeader title="Users" />
      <StatusMessage tone="success">{status}</StatusMessage>
      <section class="card" aria-labelledby="users-heading">
        <h2 id="users-heading">All users</h2>
        <FormAlert>{loadError}</FormAlert>
        {users === null ? (
          loadError === '' && <Loading label="Loading users…" />
        ) : (
          <UsersTable
            users={users}
            currentUserId={me.id}
            onEdit={(user) => {
              setStatus('');
              setOpen({ kind: 'edit', user });
            }}
            onDelete={(user) => {
              setStatus('');
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
