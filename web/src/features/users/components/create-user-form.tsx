import { useRef, useState } from 'preact/hooks';
import { Button, FormAlert, PasswordField, SelectField, StatusMessage, TextField } from '../../../components/ui';
import type { Role, User } from '../../../types/api';
import { createUser } from '../api/create-user';
import { ROLE_OPTIONS, toRole } from './role-options';
import { FIELD_ORDER, placeUserError, type UserFieldErrors, type UserFieldName } from './user-errors';

export interface CreateUserFormProps {
  onCreated: (user: User) => void;
}

const EMPTY = { email: '', username: '', name: '', role: 'user' as Role, password: '' };

export function CreateUserForm({ onCreated }: CreateUserFormProps) {
  const [values, setValues] = useState(EMPTY);
  const [errors, setErrors] = useState<UserFieldErrors>({});
  const [formError, setFormError] = useState('');
  const [created, setCreated] = useState('');
  const [pending, setPending] = useState(false);
  const refs: Partial<Record<UserFieldName, { current: HTMLInputElement | null }>> = {
    email: useRef<HTMLInputElement>(null),
    username: useRef<HTMLInputElement>(null),
    name: useRef<HTMLInputElement>(null),
    password: useRef<HTMLInputElement>(null),
  };
  const set = (key: keyof typeof EMPTY) => (value: string) => setValues((v) => ({ ...v, [key]: value }));

  function show(found: UserFieldErrors, message = ''): void {
    setErrors(found);
    setFormError(message);
    const first = FIELD_ORDER.find((k) => found[k] !== undefined);
    if (first) refs[first]?.current?.focus();
  }

  async function submit(event: Event): Promise<void> {
    event.preventDefault();
    if (pending) return;
    setCreated('');
    const found: UserFieldErrors = {};
    if (values.email.trim() === '' && values.username.trim() === '') found.email = 'Give an email, a username or both.';
    if (values.name.trim() === '') found.name = 'Enter the person’s name.';
    if (values.password === '' && values.email.trim() === '' && values.username.trim() !== '') {
      found.password = 'Give an initial password, or an email so they can set their own.';
    }
    if (Object.keys(found).length > 0) return show(found);

    const withoutPassword = values.password === '';
    setPending(true);
    show({});
    try {
      const user = await createUser({
        email: values.email.trim() || null,
        username: values.username.trim() || null,
        name: values.name.trim(),
        role: values.role,
        password: values.password === '' ? null : values.password,
      });
      setValues(EMPTY);
      setCreated(withoutPassword ? `Added ${user.name}. They will get an email to set their password.` : `Added ${user.name}.`);
      onCreated(user);
    } catch (error) {
      const placed = placeUserError(error);
      show(placed.fields, placed.message);
    } finally {
      setPending(false);
    }
  }

  return (
    <form class="form form-wide" noValidate onSubmit={submit} aria-labelledby="create-user-heading">
      <h2 id="create-user-heading">Add a user</h2>
      <FormAlert>{formError}</FormAlert>
      <StatusMessage tone="success">{created}</StatusMessage>
      <div class="form-grid">
        <TextField
          label="Email"
          type="email"
          autocomplete="off"
          autocapitalize="off"
          spellcheck={false}
          hint="Needed for password recovery."
          value={values.email}
          onValue={set('email')}
          error={errors.email}
          inputRef={refs.email}
        />
        <TextField
          label="Username"
          autocomplete="off"
          autocapitalize="off"
          spellcheck={false}
          hint="Letters, digits, dots, dashes or underscores."
          value={values.username}
          onValue={set('username')}
          error={errors.username}
          inputRef={refs.username}
        />
        <TextField label="Name" autocomplete="off" required value={values.name} onValue={set('name')} error={errors.name} inputRef={refs.name} />
        <SelectField label="Role" value={values.role} onValue={(v) => set('role')(toRole(v))} options={ROLE_OPTIONS} error={errors.role} />
      </div>
      <PasswordField
        label="Initial password"
        labelNote="optional"
        autocomplete="new-password"
        hint="Leave empty when you give an email: they will get an email to set their password."
        value={values.password}
        onValue={set('password')}
        error={errors.password}
        inputRef={refs.password}
      />
      <div class="form-actions">
        <Button type="submit" pending={pending} pendingLabel="Adding…">
          Add user
        </Button>
      </div>
    </form>
  );
}
