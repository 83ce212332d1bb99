import { Button } from '../../../components/ui';
import { formatDateTime } from '../../../lib/format-time';
import type { AccountSession } from '../../../types/api';
import '../account.css';

export interface SessionsListProps {
  sessions: readonly AccountSession[];
  /** the session being signed out */
  signingOut: string | null;
  onSignOut: (session: AccountSession) => void;
}

/** One item per session: device, address, when it signed in and was last seen, and its Sign out button. */
export function SessionsList({ sessions, signingOut, onSignOut }: SessionsListProps) {
  return (
    <ul class="session-list" aria-label="Your sessions">
      {sessions.map((session) => (
        <li key={session.id} class="session-item" data-session-id={session.id}>
          <div class="session-main">
            <p class="session-device">
              <strong>{session.device}</strong>
              {session.current && <span class="badge session-current">This browser</span>}
            </p>
            <dl class="session-facts">
              <div>
                <dt>Address</dt>
                <dd>
                  {session.ip ?? <span class="muted">unknown</span>}
                  {session.place !== null && <span class="muted"> · {session.place}</span>}
                </dd>
              </div>
              <div>
                <dt>Signed in</dt>
                <dd>
                  <time dateTime={session.createdAt}>{formatDateTime(session.createdAt)}</time>
                </dd>
              </div>
              <div>
                <dt>Last seen</dt>
                <dd>
                  <time dateTime={session.lastSeenAt}>{formatDateTime(session.lastSeenAt)}</time>
                </dd>
              </div>
            </dl>
          </div>
          <div class="session-actions">
            <Button
              variant="secondary"
              pending={signingOut === session.id}
              pendingLabel="Signing out…"
              aria-label={session.current ? 'Sign out of this browser' : `Sign out ${session.device}, last seen ${formatDateTime(session.lastSeenAt)}`}
              onClick={() => onSignOut(session)}
            >
              Sign out
            </Button>
          </div>
        </li>
      ))}
    </ul>
  );
}
