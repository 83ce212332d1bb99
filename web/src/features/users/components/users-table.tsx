import { useEffect, useRef } from 'preact/hooks';
import { Button } from '../../../components/ui';
import { ROLE_LABELS, type User } from '../../../types/api';
import '../users.css';

export interface UsersTableProps {
  users: readonly User[];
  currentUserId: string;
  onEdit: (user: User) => void;
  onDelete: (user: User) => void;
  onSendReset: (user: User) => void;
  /** the user whose reset link is being sent */
  sendingResetTo: string | null;
  onUnlock: (user: User) => void;
  /** the user being unlocked */
  unlocking: string | null;
}

export function UsersTable({ users, currentUserId, onEdit, onDelete, onSendReset, sendingResetTo, onUnlock, unlocking }: UsersTableProps) {
  const bodyRef = useRef<HTMLTableSectionElement>(null);
  const refocusRow = useRef<string | null>(null);

  // An unlocked row loses its Unlock button: focus moves to the row's next action rather than to <body>.
  useEffect(() => {
    const id = refocusRow.current;
    if (id === null || users.find((u) => u.id === id)?.locked !== false) return;
    refocusRow.current = null;
    const row = Array.from(bodyRef.current?.rows ?? []).find((r) => r.dataset.userId === id);
    row?.querySelector<HTMLElement>('.table-actions button')?.focus();
  }, [users]);

  return (
    <div class="table-scroll">
      <table class="table users-table">
        <caption class="visually-hidden">Users</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Email</th>
            <th scope="col">Username</th>
            <th scope="col">Role</th>
            <th scope="col">Status</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody ref={bodyRef}>
          {users.map((user) => {
            const self = user.id === currentUserId;
            return (
              <tr key={user.id} data-user-id={user.id} class={self ? 'user-self' : undefined}>
                <th scope="row" class="user-long" title={user.name}>
                  {user.name}
                  {self && <span class="muted"> (you)</span>}
                </th>
                <td class="user-long" data-label="Email" title={user.email ?? undefined}>
                  {user.email ?? <span class="muted">none</span>}
                </td>
                <td class="user-long" data-label="Username" title={user.username ?? undefined}>
                  {user.username ?? <span class="muted">none</span>}
                </td>
                <td data-label="Role">{ROLE_LABELS[user.role]}</td>
                <td data-label="Status">
                  <StatusCell user={user} />
                </td>
                <td class="table-actions">
                  <div class="user-actions">
                    {user.locked && (
                      <Button
                        variant="secondary"
                        aria-label={`Unlock ${user.name}`}
                        pending={unlocking === user.id}
                        pendingLabel="Unlocking…"
                        onClick={(event) => {
                          refocusRow.current = event.currentTarget === document.activeElement ? user.id : null;
                          onUnlock(user);
                        }}
                      >
                        Unlock
                      </Button>
                    )}
                    <Button
                      variant="secondary"
                      aria-label={`Send reset link to ${user.name}`}
                      pending={sendingResetTo === user.id}
                      pendingLabel="Sending…"
                      onClick={() => onSendReset(user)}
                    >
                      Send reset link
                    </Button>
                    <Button variant="secondary" aria-label={self ? `Edit ${user.name} (you)` : `Edit ${user.name}`} onClick={() => onEdit(user)}>
                      Edit
                    </Button>
                    {/* Your own account is never deleted from here (the server refuses it too: cannot_delete_self). */}
                    {!self && (
                      <Button variant="danger" aria-label={`Delete ${user.name}`} onClick={() => onDelete(user)}>
                        Delete
                      </Button>
                    )}
                  </div>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** "Locked" in words (a badge, never colour alone), beside what else is true of the account. */
function StatusCell({ user }: { user: User }) {
  const status = statusOf(user);
  if (!user.locked) return <>{status}</>;
  return (
    <>
      <span class="badge badge-locked">Locked</span>
      {status !== 'Active' && <> {status}</>}
    </>
  );
}

function statusOf(user: User): string {
  if (user.disabled) return 'Disabled';
  if (user.hasPassword === false) return 'No password yet';
  if (user.mustChangePassword) return 'Must change password';
  return 'Active';
}
