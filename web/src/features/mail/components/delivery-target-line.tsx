import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { describeError } from '../../../lib/api';
import { getDeliveryTarget, type DeliveryTargetState } from '../api/get-delivery-target';
import '../mail.css';

const LABELS: Record<DeliveryTargetState['target'], string> = {
  'dev-mailbox': 'dev mailbox',
  server: 'your mail server',
};

/** "Deliver to: dev mailbox | your mail server", with the way to change it (Home, the Mail page). */
export function DeliveryTargetLine() {
  const [state, setState] = useState<DeliveryTargetState | null>(null);
  const [error, setError] = useState('');

  useEffect(() => {
    let live = true;
    getDeliveryTarget().then(
      (loaded) => live && setState(loaded),
      (err: unknown) => live && setError(describeError(err)),
    );
    return () => {
      live = false;
    };
  }, []);

  if (error !== '') return <p class="delivery-target-line muted">Where mail goes could not be loaded: {error}</p>;
  if (state === null) return null;
  return (
    <p class="delivery-target-line">
      Deliver to: <strong>{LABELS[state.target]}</strong>
      {state.target === 'dev-mailbox' && state.devMailbox && (
        <>
          {' — '}
          <Link href="/dev/mailbox" class="link">
            open the dev mailbox
          </Link>
        </>
      )}
      {state.lockedBy === null && (
        <>
          {'. '}
          <Link href="/settings" class="link">
            Change where mail goes
          </Link>
        </>
      )}
    </p>
  );
}
