import { createRef, type ComponentChildren, type RefObject } from 'preact';
import { useState } from 'preact/hooks';

/** Messages under fields: one sentence, or a list (a refused password's reasons). */
export type FieldMessages<K extends string> = Partial<Record<K, string | string[]>>;

/** What a form shows after its own check or the server's refusal. */
export interface FormErrors<K extends string> {
  fields?: FieldMessages<K>;
  /** for the whole form, in its alert */
  message?: ComponentChildren;
}

export interface Submission<K extends string> {
  /** the form's own check: what to show, or undefined to send */
  check?: () => FormErrors<K> | undefined;
  action: () => Promise<void> | void;
  /** where a refusal is shown */
  refused: (error: unknown) => FormErrors<K>;
}

/** What a text, password or select field takes from the form. */
export interface FieldBinding<T> {
  value: T;
  onValue: (value: T) => void;
  error: string | string[] | undefined;
  inputRef: RefObject<HTMLInputElement>;
}

export interface Form<V, K extends string> {
  values: V;
  setValues: (values: V) => void;
  set: <F extends keyof V>(field: F) => (value: V[F]) => void;
  errors: FieldMessages<K>;
  message: ComponentChildren;
  pending: boolean;
  refs: Record<K, RefObject<HTMLInputElement>>;
  /** a field's value, setter, error and input, to spread on the field */
  field: <F extends K & keyof V>(name: F) => FieldBinding<V[F]>;
  /** an onSubmit handler: the check, then the action once at a time, its refusal shown where `refused` puts it */
  submit: (submission: Submission<K>) => (event: Event) => Promise<void>;
}

/** Values, errors and the pending state of a form whose fields, in focus order, are `fields`. */
export function useForm<V extends object, K extends string>(initial: V | (() => V), fields: readonly K[]): Form<V, K> {
  const [values, setValues] = useState<V>(initial);
  const [shown, setShown] = useState<FormErrors<K>>({});
  const [pending, setPending] = useState(false);
  const [refs] = useState(() => Object.fromEntries(fields.map((name) => [name, createRef()])) as Record<K, RefObject<HTMLInputElement>>);
  const errors: FieldMessages<K> = shown.fields ?? {};
  const set =
    <F extends keyof V>(field: F) =>
    (value: V[F]) =>
      setValues((v) => ({ ...v, [field]: value }));

  // Shows these errors alone, and focuses the first field (in the form's order) that has one.
  function show(found: FormErrors<K>): void {
    setShown(found);
    const first = fields.find((name) => found.fields?.[name] !== undefined);
    if (first) refs[first].current?.focus();
  }

  return {
    values,
    setValues,
    set,
    errors,
    message: shown.message ?? '',
    pending,
    refs,
    field: (name) => ({ value: values[name], onValue: set(name), error: errors[name], inputRef: refs[name] }),
    submit:
      ({ check, action, refused }) =>
      async (event) => {
        event.preventDefault();
        if (pending) return;
        const found = check?.();
        if (found) return show(found);
        setPending(true);
        show({});
        try {
          await action();
        } catch (error) {
          show(refused(error));
        } finally {
          setPending(false);
        }
      },
  };
}
