import { FormActions, FormAlert, TextField } from '../../../components/ui';
import { ApiError, describeError } from '../../../lib/api';
import { useForm } from '../../../lib/use-form';
import type { User } from '../../../types/api';
import { updateName } from '../api/update-name';

export interface NameFormProps {
  user: User;
  onSaved: (user: User) => void;
}

/** Changes the signed-in user's own name (the Users page's rule: not blank). */
export function NameForm({ user, onSaved }: NameFormProps) {
  const form = useForm({ name: user.name }, ['name']);
  const name = form.values.name;

  const submit = form.submit({
    check: () => (name.trim() === '' ? { fields: { name: 'Enter your name.' } } : undefined),
    action: async () => {
      if (name.trim() === user.name) return;
      const saved = await updateName(name.trim());
      form.setValues({ name: saved.name });
      onSaved(saved);
    },
    refused: (error) =>
      error instanceof ApiError && error.fields.name !== undefined ? { fields: { name: error.fields.name } } : { message: describeError(error) },
  });

  return (
    <form class="form account-name-form" noValidate onSubmit={submit} aria-labelledby="name-heading">
      <h3 id="name-heading">Change your name</h3>
      <FormAlert>{form.message}</FormAlert>
      <TextField label="Name" autocomplete="name" required maxLength={200} {...form.field('name')} />
      <FormActions submit="Save name" pending={form.pending} pendingLabel="Saving…" />
    </form>
  );
}
