import { TableScroll } from '../../../components/ui';
import { formatDateTime } from '../../../lib/format-time';
import type { Delivery } from '../api/get-deliveries';

const KIND_LABELS: Record<string, string> = {
  reset: 'Password reset',
  set_password: 'Set password (new user)',
  password_changed: 'Password changed notice',
};

const STATUS_LABELS: Record<string, string> = {
  queued: 'Queued',
  sending: 'Sending',
  sent: 'Sent',
  retrying: 'Retrying',
  failed: 'Failed',
  expired: 'Expired',
};

/** Where a delivery went (sent) or was last tried. */
export const VIA_LABELS: Record<NonNullable<Delivery['via']>, string> = {
  'dev-mailbox': 'Dev mailbox',
  smtp: 'Mail server (SMTP)',
  'smtp-oauth2': 'Microsoft 365 (SMTP with OAuth2)',
  graph: 'Microsoft 365 (Graph)',
};

function Destination({ delivery }: { delivery: Delivery }) {
  if (delivery.via === null) return <span class="muted">{delivery.status === 'sent' ? 'not recorded' : 'not tried yet'}</span>;
  const label = VIA_LABELS[delivery.via] ?? delivery.via;
  // A delivery not sent (yet) was only tried there.
  return delivery.status === 'sent' ? <>{label}</> : <>{`Tried: ${label}`}</>;
}

export function DeliveriesTable({ deliveries }: { deliveries: readonly Delivery[] }) {
  return (
    <TableScroll label="Mail deliveries">
      <table class="table">
        <caption class="visually-hidden">Email deliveries, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">To</th>
            <th scope="col">Kind</th>
            <th scope="col">Status</th>
            <th scope="col">Destination</th>
            <th scope="col">Attempts</th>
            <th scope="col">Last error</th>
          </tr>
        </thead>
        <tbody>
          {deliveries.map((d) => (
            <tr key={d.id}>
              <td class="nowrap">
                <time dateTime={d.at}>{formatDateTime(d.at)}</time>
              </td>
              <td class="wrap-anywhere">{d.to ?? <span class="muted">not known yet</span>}</td>
              <td>{KIND_LABELS[d.kind] ?? d.kind}</td>
              <td>
                <span class={`badge badge-${d.status}`}>{STATUS_LABELS[d.status] ?? d.status}</span>
              </td>
              <td>
                <Destination delivery={d} />
              </td>
              <td>{d.attempts}</td>
              <td class="wrap-anywhere">{d.lastError ?? <span class="muted">none</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}
