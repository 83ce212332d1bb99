import { api } from '../../../lib/api';
import type { AuditEvent, AuditOutcome, AuditType } from '../../../types/api';

export type { AuditEvent, AuditOutcome, AuditParty, AuditType } from '../../../types/api';

/** What the list (and its CSV export) is narrowed to; every part optional. */
export interface AuditFilter {
  type?: AuditType | undefined;
  outcome?: AuditOutcome | undefined;
  /** a user's id, or part of a name, email, username or a failed sign-in's login */
  user?: string | undefined;
  /** ISO-8601 UTC, inclusive */
  from?: string | undefined;
  /** ISO-8601 UTC, inclusive */
  to?: string | undefined;
}

/** The filter as the query string both audit routes take. */
export function auditFilterQuery(filter: AuditFilter): URLSearchParams {
  const query = new URLSearchParams();
  for (const key of ['type', 'outcome', 'user', 'from', 'to'] as const) {
    const value = filter[key];
    if (value !== undefined && value !== '') query.set(key, value);
  }
  return query;
}

/** Newest first; `before` is the id of the last event already shown. System admins only. */
export async function getAuditEvents(filter: AuditFilter, options: { limit: number; before?: string | undefined }): Promise<AuditEvent[]> {
  const query = auditFilterQuery(filter);
  query.set('limit', String(options.limit));
  if (options.before !== undefined) query.set('before', options.before);
  const { events } = await api.get<{ events: AuditEvent[] }>(`/api/audit?${query}`);
  return events;
}
