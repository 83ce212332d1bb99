import { api } from '../../../lib/api';

export interface AuditParty {
  id: string | null;
  label: string | null;
}

/** One security event; `detail` never holds a secret, token or password. */
export interface AuditEvent {
  id: number;
  /** ISO-8601 UTC */
  at: string;
  type: string;
  actor: AuditParty | null;
  target: AuditParty | null;
  ip: string | null;
  outcome: 'success' | 'failure';
  detail: Record<string, unknown> | null;
}

/** Newest first; `before` is the id of the last event already shown. System admins only. */
export async function getAuditEvents(options: { limit: number; before?: string | undefined }): Promise<AuditEvent[]> {
  const query = new URLSearchParams({ limit: String(options.limit) });
  if (options.before !== undefined) query.set('before', options.before);
  const { events } = await api.get<{ events: AuditEvent[] }>(`/api/audit?${query}`);
  return events;
}
