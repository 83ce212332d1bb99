import { useRef, useState } from 'preact/hooks';
import { Button, CheckboxField, Dialog, FormAlert, SelectField, TextField } from '../../../components/ui';
import type { Role, User } from '../../../types/api';
import { updateUser, type UserChanges } from '../api/update-user';
import { ROLE_OPTIONS, toRole } from './role-options';
import { placeUserError, type UserFieldErrors } from './user-errors';

export interface EditUserDialogProps {
  user: User;
  onSaved: (user: User) => void;
  onClose: () => void;
}

export function EditUserDialog({ user, onSaved, onClose }: EditUserDialogProps) {
  const [name, setName] = useState(user.name);
  const [email, setEmail] = useState(user.email ?? '');
  const [role, setRole] = useState<Role>(user.role);
  const [disabled, setDisabled] = useState(user.disabled);
  const [errors, setErrors] = useState<UserFieldErrors>({});
  const [formError, setFormError] = useState('');
  const [pending, setPending] = useState(false);
  const nameRef = useRef<HTMLInputElement>(null);
  const emailRef = useRef<HTMLInputElement>(null);

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    if (pending) return;
    if (name.trim() === '') {
      setErrors({ name: 'Enter the person’s name.' });
      nameRef.current?.focus();
      return;
    }
    // Only what changed is sent: an unchanged email must not look like an address change.
    const changes: UserChanges = {};
    if (name.trim() !== user.name) changes.name = name.trim();
    const newEmail = email.trim() === '' ? null : email.trim();
    if (newEmail !== user.email) changes.email = newEmail;
    if (role !== user.role) changes.role = role;
    if (disabled !== user.disabled) changes.disabled = disabled;
    if (Object.keys(changes).length === 0) return onClose();

    setPending(true);
    setErrors({});
    setFormError('');
    try {
      onSaved(await updateUser(user.id, changes));
    } catch (error) {
      setPending(false);
      const placed = placeUserError(error);
      setErrors(placed.fields);
      setFormError(placed.message);
      if (placed.fields.name) nameRef.current?.focus();
      else if (placed.fields.email) emailRef.current?.focus();
    }
  }

  return (
    <Dialog title={`Edit ${user.name}`} onClose={onClose}>
      <form class="form" noValidate onSubmit={submit}>
        <FormAlert>{formError}</FormAlert>
        <TextField label="Name" autocomplete="off" required value={name} onValue={setName} error={errors.name} inputRef={nameRef} />
        <TextField
          label="Email"
          type="email"
          autocomplete="off"
          autocapitalize="off"
          spellcheck={false}
          value={email}
          onValue={setEmail}
          error={errors.email}
          inputRef={emailRef}
        />
        <SelectField label="Role" value={role} onValue={(v) => setRole(toRole(v))} options={ROLE_OPTIONS} error={errors.role} />
        <CheckboxField
          label="Disabled"
          hint="A disabled user cannot sign in and is signed out everywhere."
          checked={disabled}
          onChecked={setDisabled}
          error={errors.disabled}
        />
        <div class="form-actions">
          <Button type="submit" pending={pending} pendingLabel="Saving…">
            Save changes
          </Button>
          <Button variant="secondary" onClick={onClose}>
            Cancel
          </Button>
        </div>
      </form>
    </Dialog>
  );
}
