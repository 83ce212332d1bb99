import { useState } from 'preact/hooks';
import { Button, Dialog, FormAlert } from '../../../components/ui';
import type { User } from '../../../types/api';
import { deleteUser } from '../api/delete-user';
import { placeUserError } from './user-errors';

export interface DeleteUserDialogProps {
  user: User;
  onDeleted: (user: User) => void;
  onClose: () => void;
}

export function DeleteUserDialog({ user, onDeleted, onClose }: DeleteUserDialogProps) {
  const [error, setError] = useState('');
  const [pending, setPending] = useState(false);

  async function confirm(): Promise<void> {
    if (pending) return;
    setPending(true);
    setError('');
    try {
      await deleteUser(user.id);
      onDeleted(user);
    } catch (err) {
      setPending(false);
      setError(placeUserError(err).message);
    }
  }

  return (
    <Dialog title={`Delete ${user.name}?`} role="alertdialog" onClose={onClose}>
      <p>
        {user.name} will be signed out and can no longer sign in. This cannot be undone; to block sign-in for a while, disable the user
        instead.
      </p>
      <FormAlert>{error}</FormAlert>
      <div class="form-actions">
        <Button variant="danger" pending={pending} pendingLabel="Deleting…" onClick={confirm}>
          Delete user
        </Button>
        <Button variant="secondary" onClick={onClose} autofocus>
          Cancel
        </Button>
      </div>
    </Dialog>
  );
}
