import type { ComponentChildren, Ref } from 'preact';
import type { FieldError } from '../../../components/ui';

export interface RadioOption<T extends string> {
  value: T;
  label: string;
  /** one line under the label, linked to the radio with aria-describedby */
  hint?: ComponentChildren;
}

export interface RadioGroupProps<T extends string> {
  /** unique on the page: the prefix of the group's element ids and the radios' name */
  id: string;
  /** the group's name, e.g. "Send with" */
  label: string;
  /** the chosen value; '' when none is chosen yet */
  value: T | '';
  onValue: (value: T) => void;
  options: readonly RadioOption<T>[];
  error?: FieldError;
  /** the radio that takes focus when the group has an error: the chosen one, else the first */
  inputRef?: Ref<HTMLInputElement>;
}

function hasError(error: FieldError): boolean {
  return typeof error === 'string' ? error.length > 0 : Array.isArray(error) && error.length > 0;
}

/**
 * A choice of one, laid out like the form's fields: a label for the group (role="radiogroup"),
 * native radios (arrow keys move between them) each with its own label and hint, and the group's
 * error under it, linked to the group.
 */
export function RadioGroup<T extends string>({ id, label, value, onValue, options, error, inputRef }: RadioGroupProps<T>) {
  const invalid = hasError(error);
  const focusTarget = options.some((o) => o.value === value) ? value : options[0]?.value;
  return (
    <div
      class={invalid ? 'field field-invalid' : 'field'}
      role="radiogroup"
      aria-labelledby={`${id}-label`}
      aria-describedby={invalid ? `${id}-error` : undefined}
    >
      <span id={`${id}-label`} class="field-label">
        {label}
      </span>
      <div class="form-grid">
        {options.map((option) => {
          const optionId = `${id}-${option.value}`;
          return (
            <div key={option.value} class="field field-checkbox">
              <input
                ref={option.value === focusTarget ? inputRef : undefined}
                id={optionId}
                type="radio"
                class="checkbox"
                name={id}
                value={option.value}
                checked={option.value === value}
                aria-describedby={option.hint ? `${optionId}-hint` : undefined}
                onChange={(event) => {
                  if (event.currentTarget.checked) onValue(option.value);
                }}
              />
              <label for={optionId}>{option.label}</label>
              {option.hint && (
                <p id={`${optionId}-hint`} class="field-hint">
                  {option.hint}
                </p>
              )}
            </div>
          );
        })}
      </div>
      {invalid && <GroupError id={`${id}-error`} error={error} />}
    </div>
  );
}

function GroupError({ id, error }: { id: string; error: FieldError }) {
  const messages = typeof error === 'string' ? [error] : [...(error ?? [])];
  return (
    <p id={id} class="field-error">
      {messages.join(' ')}
    </p>
  );
}
