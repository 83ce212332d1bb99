import { Button, CheckboxField, Dialog, FormActions, FormAlert, SelectField, TextField, VERBATIM } from '../../../components/ui';
import { useForm } from '../../../lib/use-form';
import type { User } from '../../../types/api';
import { updateUser, type UserChanges } from '../api/update-user';
import { ROLE_OPTIONS, toRole } from './role-options';
import '../users.css';
import { placeUserError } from './user-errors';

export interface EditUserDialogProps {
  user: User;
  /** the signed-in admin's own account: its role and enabled state are not offered (another admin changes them) */
  isSelf?: boolean;
  onSaved: (user: User) => void;
  onClose: () => void;
}

export function EditUserDialog({ user, isSelf = false, onSaved, onClose }: EditUserDialogProps) {
  const form = useForm({ name: user.name, email: user.email ?? '', role: user.role, disabled: user.disabled }, ['name', 'email', 'role', 'disabled']);
  const { name, email, role, disabled } = form.values;

  const submit = form.submit({
    check: () => (name.trim() === '' ? { fields: { name: 'Enter the person’s name.' } } : undefined),
    action: async () => {
      // Only what changed is sent: an unchanged email must not look like an address change.
      const changes: UserChanges = {};
      if (name.trim() !== user.name) changes.name = name.trim();
      const newEmail = email.trim() === '' ? null : email.trim();
      if (newEmail !== user.email) changes.email = newEmail;
      if (role !== user.role) changes.role = role;
      if (disabled !== user.disabled) changes.disabled = disabled;
      if (Object.keys(changes).length === 0) return onClose();
      onSaved(await updateUser(user.id, changes));
    },
    refused: placeUserError,
  });

  return (
    <Dialog title={`Edit ${user.name}`} onClose={onClose}>
      <form class="form" noValidate onSubmit={submit}>
        <FormAlert>{form.message}</FormAlert>
        <TextField label="Name" autocomplete="off" required {...form.field('name')} />
        <TextField label="Email" type="email" {...VERBATIM} {...form.field('email')} />
        {isSelf ? (
          <p class="muted user-self-note">
            This is your own account: you cannot change your role or disable it. Another system admin can.
          </p>
        ) : (
          <>
            <SelectField label="Role" value={role} onValue={(v) => form.set('role')(toRole(v))} options={ROLE_OPTIONS} error={form.errors.role} />
            <CheckboxField
              label="Disabled"
              hint="A disabled user cannot sign in and is signed out everywhere."
              checked={disabled}
              onChecked={form.set('disabled')}
              error={form.errors.disabled}
            />
          </>
        )}
        <FormActions submit="Save changes" pending={form.pending} pendingLabel="Saving…">
          <Button variant="secondary" onClick={onClose}>
            Cancel
          </Button>
        </FormActions>
      </form>
    </Dialog>
  );
}
