import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { Button, FormAlert, StatusMessage } from '../../../components/ui';
import { describeError } from '../../../lib/api';
import { setDeliveryTarget, type DeliveryTarget, type DeliveryTargetState } from '../api/delivery-target';
import '../settings.css';

export const TARGET_LABELS: Record<DeliveryTarget, string> = {
  'dev-mailbox': 'dev mailbox',
  server: 'your mail server',
};

/** Why mail goes where it goes, in a sentence. */
function explanation(state: DeliveryTargetState): string {
  if (state.lockedBy === 'forced-dev-mailbox') {
    return 'MAIL_DEV_INBOX=true keeps every email in the dev mailbox on this machine: unset it and restart to send to real inboxes.';
  }
  if (state.lockedBy === 'no-dev-mailbox') {
    return 'Every email goes out with the “Forgot password” email settings below. (No dev mailbox runs here: production, or MAIL_DEV_INBOX=false.)';
  }
  if (state.target === 'dev-mailbox') {
    return state.serverConfigured
      ? 'Every email lands in the dev mailbox on this machine, not in real inboxes. Your saved mail server is not used until you switch.'
      : 'Every email lands in the dev mailbox on this machine, not in real inboxes. Save the email settings below to send to real inboxes.';
  }
  return 'Every email goes out with the “Forgot password” email settings below, to real inboxes. Switch to the dev mailbox to keep mail on this machine while you set things up.';
}

export interface DeliveryTargetCardProps {
  state: DeliveryTargetState;
  onChanged: (state: DeliveryTargetState) => void;
}

/** "Deliver to: dev mailbox | your mail server", and the switch when this server allows it. */
export function DeliveryTargetCard({ state, onChanged }: DeliveryTargetCardProps) {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState('');
  const [announcement, setAnnouncement] = useState('');
  const other: DeliveryTarget = state.target === 'server' ? 'dev-mailbox' : 'server';
  const canSwitch = state.lockedBy === null && (other === 'dev-mailbox' || state.serverConfigured);

  async function switchTo(target: DeliveryTarget): Promise<void> {
    if (pending) return;
    setPending(true);
    setError('');
    setAnnouncement('');
    try {
      const next = await setDeliveryTarget(target);
      onChanged(next);
      setAnnouncement(`Mail now goes to ${TARGET_LABELS[next.target]}.`);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setPending(false);
    }
  }

  return (
    <section class="card" aria-labelledby="delivery-target-heading">
      <h2 id="delivery-target-heading">Where mail goes</h2>
      <p class="delivery-target">
        Deliver to: <strong>{TARGET_LABELS[state.target]}</strong>
      </p>
      <p>{explanation(state)}</p>
      {state.target === 'dev-mailbox' && state.devMailbox && (
        <p>
          <Link class="link" href="/dev/mailbox">
            Open the dev mailbox
          </Link>
        </p>
      )}
      <FormAlert>{error}</FormAlert>
      <StatusMessage tone="success">{announcement}</StatusMessage>
      {canSwitch && (
        <div class="form-actions">
          <Button variant="secondary" pending={pending} pendingLabel="Switching…" onClick={() => void switchTo(other)}>
            {other === 'dev-mailbox' ? 'Deliver to dev mailbox' : 'Deliver to your mail server'}
          </Button>
        </div>
      )}
    </section>
  );
}
