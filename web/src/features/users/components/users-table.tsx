import { Button } from '../../../components/ui';
import { ROLE_LABELS, type User } from '../../../types/api';

export interface UsersTableProps {
  users: readonly User[];
  currentUserId: string;
  onEdit: (user: User) => void;
  onDelete: (user: User) => void;
  onSendReset: (user: User) => void;
  /** the user whose reset link is being sent */
  sendingResetTo: string | null;
}

export function UsersTable({ users, currentUserId, onEdit, onDelete, onSendReset, sendingResetTo }: UsersTableProps) {
  return (
    <div class="table-scroll">
      <table class="table">
        <caption class="visually-hidden">All users</caption>
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
        <tbody>
          {users.map((user) => (
            <tr key={user.id}>
              <th scope="row">
                {user.name}
                {user.id === currentUserId && <span class="muted"> (you)</span>}
              </th>
              <td>{user.email ?? <span class="muted">none</span>}</td>
              <td>{user.username ?? <span class="muted">none</span>}</td>
              <td>{ROLE_LABELS[user.role]}</td>
              <td>{statusOf(user)}</td>
              <td class="table-actions">
                <Button
                  variant="secondary"
                  aria-label={`Send reset link to ${user.name}`}
                  pending={sendingResetTo === user.id}
                  pendingLabel="Sending…"
                  onClick={() => onSendReset(user)}
                >
                  Send reset link
                </Button>
                <Button variant="secondary" aria-label={`Edit ${user.name}`} onClick={() => onEdit(user)}>
                  Edit
                </Button>
                <Button variant="danger" aria-label={`Delete ${user.name}`} onClick={() => onDelete(user)}>
                  Delete
                </Button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function statusOf(user: User): string {
  if (user.disabled) return 'Disabled';
  if (user.hasPassword === false) return 'No password yet';
  if (user.mustChangePassword) return 'Must change password';
  return 'Active';
}
