import type { AuditEvent, AuditParty } from './api-schemas.js';

// CSV as RFC 4180 writes it (CRLF between records; a field holding a comma, quote or line break
// in double quotes, its quotes doubled), made safe to open in a spreadsheet: a cell that starts
// with = + - @ tab, CR or LF would be read as a formula, so it gets a leading ' (OWASP, "CSV Injection").

export const AUDIT_CSV_COLUMNS = ['id', 'at', 'type', 'outcome', 'actor', 'target', 'ip', 'detail'] as const;

const FORMULA_START = /^[=+\-@\t\r\n]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One field, neutralised and quoted as needed. */
export function csvField(value: string): string {
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** One record, CRLF-terminated. */
export function csvRecord(values: readonly string[]): string {
  return `${values.map(csvField).join(',')}\r\n`;
}

/** Who acted or was acted on: the label recorded, else the id, else nothing. */
function party(p: AuditParty | null): string {
  return p === null ? '' : (p.label ?? p.id ?? '');
}

/** An event as one CSV record, in AUDIT_CSV_COLUMNS order; detail as compact JSON. */
export function auditCsvRecord(e: AuditEvent): string {
  return csvRecord([String(e.id), e.at, e.type, e.outcome, party(e.actor), party(e.target), e.ip ?? '', e.detail === null ? '' : JSON.stringify(e.detail)]);
}

export const AUDIT_CSV_HEADER = csvRecord(AUDIT_CSV_COLUMNS);
