import type { ComponentChildren } from 'preact';
import { Button } from './button';

export interface FormActionsProps {
  /** the submit button's text */
  submit: string;
  pending: boolean;
  /** the submit button's text while the form is being sent */
  pendingLabel: string;
  /** after the submit button: a way back, Cancel */
  children?: ComponentChildren;
}

/** A form's row of buttons: submit first, then any others. */
export function FormActions({ submit, pending, pendingLabel, children }: FormActionsProps) {
  return (
    <div class="form-actions">
      <Button type="submit" pending={pending} pendingLabel={pendingLabel}>
        {submit}
      </Button>
      {children}
    </div>
  );
}
