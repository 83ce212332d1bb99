import type { ComponentChildren, InputHTMLAttributes, Ref, SelectHTMLAttributes } from 'preact';
import { useId, useState } from 'preact/hooks';

/** A field's error: one sentence, or a list (password policy reasons). */
export type FieldError = string | readonly string[] | undefined;

interface FieldFrameProps {
  id: string;
  label: string;
  hint?: ComponentChildren | undefined;
  error?: FieldError;
  children: ComponentChildren;
  /** e.g. "Optional" after the label */
  labelNote?: string | undefined;
  /** shown right under the input, above the error (live feedback) */
  feedback?: ComponentChildren | undefined;
}

/** For names and addresses that must stay as typed: the browser neither fills in, capitalises nor spell-checks them. */
export const VERBATIM = { autocomplete: 'off', autocapitalize: 'off', spellcheck: false } as const;

export function describedBy(id: string, hint: unknown, error: FieldError): string | undefined {
  const ids = [hasError(error) ? `${id}-error` : '', hint ? `${id}-hint` : ''].filter(Boolean);
  return ids.length > 0 ? ids.join(' ') : undefined;
}

export function hasError(error: FieldError): boolean {
  return typeof error === 'string' ? error.length > 0 : Array.isArray(error) && error.length > 0;
}

function FieldFrame({ id, label, hint, error, labelNote, feedback, children }: FieldFrameProps) {
  return (
    <div class={hasError(error) ? 'field field-invalid' : 'field'}>
      <label for={id} class="field-label">
        {label}
        {labelNote && <span class="field-label-note"> ({labelNote})</span>}
      </label>
      {hint && (
        <p id={`${id}-hint`} class="field-hint">
          {hint}
        </p>
      )}
      {children}
      {feedback}
      <FieldErrorText id={`${id}-error`} error={error} />
    </div>
  );
}

function FieldErrorText({ id, error }: { id: string; error: FieldError }) {
  if (!hasError(error)) return null;
  if (typeof error === 'string') {
    return (
      <p id={id} class="field-error">
        {error}
      </p>
    );
  }
  const list = error as readonly string[];
  return (
    <div id={id} class="field-error">
      {list.length === 1 ? (
        <p>{list[0]}</p>
      ) : (
        <ul>
          {list.map((message) => (
            <li key={message}>{message}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export interface TextFieldProps extends Omit<InputHTMLAttributes<HTMLInputElement>, 'id' | 'class' | 'value' | 'onInput' | 'label'> {
  label: string;
  value: string;
  onValue: (value: string) => void;
  hint?: ComponentChildren;
  error?: FieldError;
  labelNote?: string;
  inputRef?: Ref<HTMLInputElement>;
}

export function TextField({ label, value, onValue, hint, error, labelNote, inputRef, type = 'text', ...rest }: TextFieldProps) {
  const id = useId();
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error} labelNote={labelNote}>
      <input
        {...rest}
        ref={inputRef}
        id={id}
        type={type}
        class="input"
        value={value}
        aria-invalid={hasError(error) || undefined}
        aria-describedby={describedBy(id, hint, error)}
        onInput={(event) => onValue(event.currentTarget.value)}
      />
    </FieldFrame>
  );
}

export interface PasswordFieldProps extends Omit<TextFieldProps, 'type'> {
  /** e.g. live length feedback, under the input */
  feedback?: ComponentChildren;
}

/** A password input with a Show toggle (the accessible name says which password it reveals). */
export function PasswordField({ label, value, onValue, hint, error, labelNote, inputRef, feedback, ...rest }: PasswordFieldProps) {
  const id = useId();
  const [shown, setShown] = useState(false);
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error} labelNote={labelNote} feedback={feedback}>
      <div class="password-input">
        <input
          {...rest}
          ref={inputRef}
          id={id}
          type={shown ? 'text' : 'password'}
          class="input"
          value={value}
          spellcheck={false}
          autocapitalize="off"
          aria-invalid={hasError(error) || undefined}
          aria-describedby={describedBy(id, hint, error)}
          onInput={(event) => onValue(event.currentTarget.value)}
        />
        <button
          type="button"
          class="button button-secondary password-toggle"
          aria-controls={id}
          aria-pressed={shown}
          aria-label={`Show ${label.toLowerCase()}`}
          onClick={() => setShown((s) => !s)}
        >
          Show
        </button>
      </div>
    </FieldFrame>
  );
}

export interface SelectFieldProps extends Omit<SelectHTMLAttributes<HTMLSelectElement>, 'id' | 'class' | 'value' | 'onChange' | 'label'> {
  label: string;
  value: string;
  onValue: (value: string) => void;
  options: ReadonlyArray<{ value: string; label: string }>;
  hint?: ComponentChildren;
  error?: FieldError;
}

export function SelectField({ label, value, onValue, options, hint, error, ...rest }: SelectFieldProps) {
  const id = useId();
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error}>
      <select
        {...rest}
        id={id}
        class="input"
        value={value}
        aria-invalid={hasError(error) || undefined}
        aria-describedby={describedBy(id, hint, error)}
        onChange={(event) => onValue(event.currentTarget.value)}
      >
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </FieldFrame>
  );
}

export interface CheckboxFieldProps {
  label: string;
  checked: boolean;
  onChecked: (checked: boolean) => void;
  hint?: ComponentChildren;
  error?: FieldError;
}

export function CheckboxField({ label, checked, onChecked, hint, error }: CheckboxFieldProps) {
  const id = useId();
  return (
    <div class={hasError(error) ? 'field field-checkbox field-invalid' : 'field field-checkbox'}>
      <input
        id={id}
        type="checkbox"
        class="checkbox"
        checked={checked}
        aria-invalid={hasError(error) || undefined}
        aria-describedby={describedBy(id, hint, error)}
        onChange={(event) => onChecked(event.currentTarget.checked)}
      />
      <label for={id}>{label}</label>
      {hint && (
        <p id={`${id}-hint`} class="field-hint">
          {hint}
        </p>
      )}
      <FieldErrorText id={`${id}-error`} error={error} />
    </div>
  );
}
