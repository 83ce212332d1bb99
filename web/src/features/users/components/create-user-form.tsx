import { useState } from 'preact/hooks';
import { FormActions, FormAlert, PasswordField, SelectField, StatusMessage, TextField, VERBATIM } from '../../../components/ui';
import { useForm } from '../../../lib/use-form';
import type { Role, User } from '../../../types/api';
import { createUser } from '../api/create-user';
import { ROLE_OPTIONS, toRole } from './role-options';
import { FIELD_ORDER, placeUserError, type UserFieldErrors } from './user-errors';

export interface CreateUserFormProps {
  onCreated: (user: User) => void;
}

const EMPTY = { email: '', username: '', name: '', role: 'user' as Role, password: '' };

export function CreateUserForm({ onCreated }: CreateUserFormProps) {
  const form = useForm(EMPTY, FIELD_ORDER);
  const { values } = form;
  const [created, setCreated] = useState('');

  const submit = form.submit({
    check: () => {
      setCreated('');
      const fields: UserFieldErrors = {};
      if (values.email.trim() === '' && values.username.trim() === '') fields.email = 'Give an email, a username or both.';
      if (values.name.trim() === '') fields.name = 'Enter the person’s name.';
      if (values.password === '' && values.email.trim() === '' && values.username.trim() !== '') {
        fields.password = 'Give an initial password, or an email so they can set their own.';
      }
      return Object.keys(fields).length > 0 ? { fields } : undefined;
    },
    action: async () => {
      const user = await createUser({
        email: values.email.trim() || null,
        username: values.username.trim() || null,
        name: values.name.trim(),
        role: values.role,
        password: values.password === '' ? null : values.password,
      });
      form.setValues(EMPTY);
      setCreated(values.password === '' ? `Added ${user.name}. They will get an email to set their password.` : `Added ${user.name}.`);
      onCreated(user);
    },
    refused: placeUserError,
  });

  return (
    <form class="form form-wide" noValidate onSubmit={submit} aria-labelledby="create-user-heading">
      <h2 id="create-user-heading">Add a user</h2>
      <FormAlert>{form.message}</FormAlert>
      <StatusMessage tone="success">{created}</StatusMessage>
      <div class="form-grid">
        <TextField label="Email" type="email" {...VERBATIM} hint="Needed for password recovery." {...form.field('email')} />
        <TextField label="Username" {...VERBATIM} hint="Letters, digits, dots, dashes or underscores." {...form.field('username')} />
        <TextField label="Name" autocomplete="off" required {...form.field('name')} />
        <SelectField label="Role" value={values.role} onValue={(v) => form.set('role')(toRole(v))} options={ROLE_OPTIONS} error={form.errors.role} />
      </div>
      <PasswordField
        label="Initial password"
        labelNote="optional"
        autocomplete="new-password"
        hint="Leave empty when you give an email: they will get an email to set their password."
        {...form.field('password')}
      />
      <FormActions submit="Add user" pending={form.pending} pendingLabel="Adding…" />
    </form>
  );
}
