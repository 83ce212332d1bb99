import { api } from '../../../lib/api';
import type { AuditEvent } from '../../../types/api';

export type { AuditEvent, AuditParty } from '../../../types/api';

/** Newest first; `before` is the id of the last event already shown. System admins only. */
export async function getAuditEvents(options: { limit: number; before?: string | undefined }): Promise<AuditEvent[]> {
  const query = new URLSearchParams({ limit: String(options.limit) });
  if (options.before !== undefined) query.set('before', options.before);
  const { events } = await api.get<{ events: AuditEvent[] }>(`/api/audit?${query}`);
  return events;
}
