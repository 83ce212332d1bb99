import type { ComponentChildren } from 'preact';

export interface FormAlertProps {
  /** nothing shown (but the live region stays in place) when empty */
  children?: ComponentChildren;
}

/**
 * An error for the whole form. The role="alert" region is always in the page, so the message
 * is announced when it appears rather than depending on a newly inserted live region.
 */
export function FormAlert({ children }: FormAlertProps) {
  const empty = children === undefined || children === null || children === false || children === '';
  return (
    <div role="alert" aria-atomic="true" class={empty ? 'live-region' : 'alert alert-error'}>
      {empty ? null : children}
    </div>
  );
}

export interface StatusMessageProps {
  tone?: 'info' | 'success';
  children?: ComponentChildren;
}

/** A polite live region (role="status") for confirmations and progress. */
export function StatusMessage({ tone = 'info', children }: StatusMessageProps) {
  const empty = children === undefined || children === null || children === false || children === '';
  return (
    <div role="status" aria-atomic="true" class={empty ? 'live-region' : `alert alert-${tone}`}>
      {empty ? null : children}
    </div>
  );
}

/** A static notice (not announced on its own). */
export function Notice({ tone = 'info', children }: { tone?: 'info' | 'warning'; children: ComponentChildren }) {
  return <div class={`alert alert-${tone}`}>{children}</div>;
}
