import { useEffect, useRef, useState } from 'preact/hooks';
import { StatusMessage } from '../../../components/ui';

export interface ResetCompleteProps {
  /** seconds before leaving for the sign-in page */
  redirectAfterSeconds?: number;
  onContinue: () => void;
}

/** After a reset: a visible countdown to the sign-in page, and a button to go at once. */
export function ResetComplete({ redirectAfterSeconds = 5, onContinue }: ResetCompleteProps) {
  const [secondsLeft, setSecondsLeft] = useState(redirectAfterSeconds);
  const continueRef = useRef(onContinue);
  continueRef.current = onContinue;
  const buttonRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    buttonRef.current?.focus();
    const startedAtMs = Date.now();
    const timer = window.setInterval(() => {
      const left = Math.max(0, redirectAfterSeconds - Math.floor((Date.now() - startedAtMs) / 1000));
      setSecondsLeft(left);
      if (left === 0) {
        window.clearInterval(timer);
        continueRef.current();
      }
    }, 250);
    return () => window.clearInterval(timer);
  }, [redirectAfterSeconds]);

  return (
    <div class="form">
      <StatusMessage tone="success">
        <p>Your password was changed. Sign in with the new one.</p>
        <p>
          Going to the sign-in page in {secondsLeft} {secondsLeft === 1 ? 'second' : 'seconds'}.
        </p>
      </StatusMessage>
      <div class="form-actions">
        <button ref={buttonRef} type="button" class="button button-primary" onClick={() => continueRef.current()}>
          Sign in now
        </button>
      </div>
    </div>
  );
}
