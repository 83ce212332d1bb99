import { TableScroll } from '../../../components/ui';
import { formatDateTime } from '../../../lib/format-time';
import type { AuditEvent, AuditParty } from '../api/get-audit-events';
import { summariseDetail } from './summarise-detail';

const TYPE_LABELS: Record<string, string> = {
  login_succeeded: 'Sign-in succeeded',
  login_failed: 'Sign-in failed',
  logout: 'Signed out',
  password_changed: 'Password changed',
  password_check_failed: 'Wrong current password',
  account_locked: 'Sign-in locked',
  account_unlocked: 'Sign-in unlocked',
  signed_out_everywhere: 'Signed out everywhere',
  user_created: 'User created',
  user_updated: 'User updated',
  user_deleted: 'User deleted',
  admin_bootstrapped: 'First admin created',
  reset_requested: 'Reset requested',
  reset_email_sent: 'Reset email sent',
  reset_email_failed: 'Reset email failed',
  reset_completed: 'Password reset',
  reset_refused: 'Reset refused',
  admin_reset_sent: 'Reset link sent by an admin',
  settings_changed: 'Settings changed',
  email_test_sent: 'Test email sent',
};

export function AuditTable({ events }: { events: readonly AuditEvent[] }) {
  return (
    <TableScroll label="Audit events">
      <table class="table">
        <caption class="visually-hidden">Security events, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Event</th>
            <th scope="col">Actor</th>
            <th scope="col">Target</th>
            <th scope="col">IP</th>
            <th scope="col">Outcome</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id}>
              <td class="nowrap">
                <time dateTime={e.at}>{formatDateTime(e.at)}</time>
              </td>
              <td>
                {TYPE_LABELS[e.type] ?? e.type}
                <span class="muted code-name"> {e.type}</span>
              </td>
              <td class="wrap-anywhere">{party(e.actor)}</td>
              <td class="wrap-anywhere">{party(e.target)}</td>
              <td class="nowrap">{e.ip ?? <span class="muted">none</span>}</td>
              <td>
                <span class={`badge badge-${e.outcome === 'success' ? 'sent' : 'failed'}`}>{e.outcome === 'success' ? 'Success' : 'Failure'}</span>
              </td>
              <td class="wrap-anywhere audit-detail">{e.detail === null ? <span class="muted">none</span> : summariseDetail(e.detail)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

function party(p: AuditParty | null) {
  if (p === null) return <span class="muted">none</span>;
  return p.label ?? <span class="muted">deleted or unnamed</span>;
}
