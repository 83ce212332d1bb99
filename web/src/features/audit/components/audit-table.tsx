import { Fragment } from 'preact';
import { TableScroll } from '../../../components/ui';
import type { AuditEvent, AuditParty } from '../api/get-audit-events';
import { AUDIT_OUTCOME_LABELS, auditTypeLabel } from './audit-labels';
import { previewOf, summariseDetail } from './summarise-detail';
import './audit.css';

const COLUMNS = ['Time', 'Event', 'Actor', 'Target', 'IP', 'Outcome', 'Detail'] as const;

/**
 * The events, newest first. It fits its card: fixed column shares, long values wrap; on narrow
 * screens each event is a block of "label value" lines (the header row stays for screen readers).
 */
export function AuditTable({ events }: { events: readonly AuditEvent[] }) {
  return (
    <TableScroll label="Audit events">
      <table class="table audit-table">
        <caption class="visually-hidden">Security events, newest first</caption>
        <colgroup>
          {COLUMNS.map((c) => (
            <col key={c} class={`audit-col-${c.toLowerCase()}`} />
          ))}
        </colgroup>
        <thead>
          <tr>
            {COLUMNS.map((c) => (
              <th key={c} scope="col">
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.id} data-event-id={e.id}>
              <td data-label="Time">
                <time dateTime={e.at}>
                  <DateTime iso={e.at} />
                </time>
              </td>
              <td data-label="Event">
                {auditTypeLabel(e.type)}
                <span class="muted code-name"> {breakable(e.type)}</span>
              </td>
              <td data-label="Actor">{party(e.actor)}</td>
              <td data-label="Target">{party(e.target)}</td>
              <td data-label="IP">{e.ip ?? <span class="muted">none</span>}</td>
              <td data-label="Outcome">
                <span class={`badge badge-${e.outcome === 'success' ? 'sent' : 'failed'}`}>{AUDIT_OUTCOME_LABELS[e.outcome]}</span>
              </td>
              <td data-label="Detail" class="audit-detail">
                {e.detail === null ? <span class="muted">none</span> : <Detail text={summariseDetail(e.detail)} />}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

/** Date and time, each kept whole, so a narrow column breaks only between them. */
function DateTime({ iso }: { iso: string }) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return <>{iso}</>;
  return (
    <>
      <span class="nowrap">{date.toLocaleDateString(undefined, { dateStyle: 'medium' })}</span>{' '}
      <span class="nowrap">{date.toLocaleTimeString(undefined, { timeStyle: 'medium' })}</span>
    </>
  );
}

/** A long detail shows its start; the whole text is one click away. */
function Detail({ text }: { text: string }) {
  const preview = previewOf(text);
  if (preview === text) return <>{text}</>;
  return (
    <details class="audit-detail-more">
      <summary>
        <span class="audit-detail-preview">{preview} </span>
        <span class="audit-detail-toggle audit-detail-show">Show all</span>
        <span class="audit-detail-toggle audit-detail-hide">Show less</span>
      </summary>
      <p>{text}</p>
    </details>
  );
}

/** An event type that may break after each underscore (password_check_failed). */
function breakable(type: string) {
  return type.split('_').map((part, i, parts) => (
    <Fragment key={i}>
      {part}
      {i < parts.length - 1 && (
        <>
          _<wbr />
        </>
      )}
    </Fragment>
  ));
}

function party(p: AuditParty | null) {
  if (p === null) return <span class="muted">none</span>;
  return p.label ?? <span class="muted">deleted or unnamed</span>;
}
