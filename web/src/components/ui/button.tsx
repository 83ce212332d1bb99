import type { ButtonHTMLAttributes, ComponentChildren } from 'preact';

export type ButtonVariant = 'primary' | 'secondary' | 'danger' | 'link';

export interface ButtonProps extends Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'class' | 'className'> {
  variant?: ButtonVariant;
  /** While true the button ignores clicks and says so; it stays focusable so focus is not lost. */
  pending?: boolean;
  pendingLabel?: string;
  children: ComponentChildren;
}

export function Button({ variant = 'primary', pending = false, pendingLabel, type = 'button', children, onClick, ...rest }: ButtonProps) {
  return (
    <button
      {...rest}
      type={type}
      class={`button button-${variant}`}
      aria-disabled={pending || undefined}
      onClick={(event) => {
        if (pending) {
          event.preventDefault();
          return;
        }
        onClick?.(event);
      }}
    >
      {pending && pendingLabel !== undefined ? pendingLabel : children}
    </button>
  );
}
