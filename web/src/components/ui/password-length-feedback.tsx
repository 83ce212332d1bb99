import { useEffect, useRef, useState } from 'preact/hooks';
import { countPasswordCharacters, type PasswordPolicy } from '../../lib/password-policy';

/** How long typing must pause before a screen reader hears the count. */
const ANNOUNCE_AFTER_MS = 1000;

export interface PasswordLengthFeedbackProps {
  password: string;
  /** null while unknown: nothing is shown */
  policy: PasswordPolicy | null;
}

/**
 * Live length feedback that informs without nagging: neutral wording, no red, no error before
 * the form is sent. Sighted people see the count change as they type; screen readers hear it
 * through a polite region only once typing pauses (as GOV.UK's character count does), so it
 * does not talk over every keystroke.
 */
export function PasswordLengthFeedback({ password, policy }: PasswordLengthFeedbackProps) {
  const length = countPasswordCharacters(password);
  const visible = policy === null ? '' : visibleMessage(length, policy);
  const spoken = policy === null || length === 0 ? '' : spokenMessage(length, policy);
  const [announced, setAnnounced] = useState('');
  const lastSpoken = useRef('');

  useEffect(() => {
    if (spoken === '' || spoken === lastSpoken.current) return;
    const timer = window.setTimeout(() => {
      lastSpoken.current = spoken;
      setAnnounced(spoken);
    }, ANNOUNCE_AFTER_MS);
    return () => window.clearTimeout(timer);
  }, [spoken]);

  const state = policy === null || length === 0 ? 'empty' : length < policy.minLength ? 'short' : length > policy.maxLength ? 'long' : 'enough';
  return (
    <>
      <p class={`password-length password-length-${state}`} aria-hidden="true">
        {visible}
      </p>
      <p role="status" aria-atomic="true" class="live-region">
        {announced}
      </p>
    </>
  );
}

function visibleMessage(length: number, { minLength, maxLength }: PasswordPolicy): string {
  if (length === 0) return `At least ${minLength} characters.`;
  if (length < minLength) return `${length} of at least ${minLength} characters`;
  if (length > maxLength) return `${length} characters: ${length - maxLength} over the limit of ${maxLength}`;
  return `${length} characters ✓ long enough`;
}

function spokenMessage(length: number, { minLength, maxLength }: PasswordPolicy): string {
  if (length < minLength) return `${length} of at least ${minLength} characters`;
  if (length > maxLength) return `${length - maxLength} characters over the limit of ${maxLength}`;
  // One sentence for every length that is enough, so it is said once, not after every pause.
  return `Long enough: at least ${minLength} characters.`;
}
