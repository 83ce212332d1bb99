import { auditFilterQuery, type AuditFilter } from './get-audit-events';

/** The most rows an export holds (the server's AUDIT_EXPORT_MAX_ROWS): the newest ones. */
export const AUDIT_EXPORT_MAX_ROWS = 50_000;

/** Where the browser downloads the filtered events as CSV (the session cookie goes with it). */
export function auditExportUrl(filter: AuditFilter): string {
  const query = auditFilterQuery(filter).toString();
  return query === '' ? '/api/audit/export.csv' : `/api/audit/export.csv?${query}`;
}
