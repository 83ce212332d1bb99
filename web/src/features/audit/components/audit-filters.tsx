import { useState } from 'preact/hooks';
import { Button, FormActions, SelectField, TextField, VERBATIM } from '../../../components/ui';
import type { AuditFilter, AuditOutcome, AuditType } from '../api/get-audit-events';
import { AUDIT_OUTCOME_LABELS, AUDIT_TYPE_LABELS } from './audit-labels';

const TYPE_OPTIONS = [{ value: '', label: 'All event types' }, ...Object.entries(AUDIT_TYPE_LABELS).map(([value, label]) => ({ value, label }))];
const OUTCOME_OPTIONS = [{ value: '', label: 'Any outcome' }, ...Object.entries(AUDIT_OUTCOME_LABELS).map(([value, label]) => ({ value, label }))];
const MINUTE_MS = 60_000;

interface Draft {
  type: string;
  outcome: string;
  user: string;
  /** datetime-local values: the reader's own time, to the minute */
  from: string;
  to: string;
}

const EMPTY: Draft = { type: '', outcome: '', user: '', from: '', to: '' };

/** A datetime-local value (the reader's time) as UTC; `end` takes the last millisecond of that minute. */
function toUtc(local: string, end: boolean): string | undefined {
  if (local === '') return undefined;
  const ms = new Date(local).getTime();
  if (Number.isNaN(ms)) return undefined;
  return new Date(end ? ms + MINUTE_MS - 1 : ms).toISOString();
}

export interface AuditFiltersProps {
  onApply: (filter: AuditFilter) => void;
  /** the server's refusal of a filter, by field (type, outcome, user, from, to) */
  serverErrors: Readonly<Record<string, string>>;
}

/** Event type, outcome, user and a time range; applied together with "Apply filters". */
export function AuditFilters({ onApply, serverErrors }: AuditFiltersProps) {
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const set = (key: keyof Draft) => (value: string) => setDraft((d) => ({ ...d, [key]: value }));
  const errorOf = (key: keyof Draft): string | undefined => errors[key] ?? serverErrors[key];

  function apply(event: Event) {
    event.preventDefault();
    const from = toUtc(draft.from, false);
    const to = toUtc(draft.to, true);
    const found: Record<string, string> = {};
    if (draft.from !== '' && from === undefined) found.from = 'Enter a date and time.';
    if (draft.to !== '' && to === undefined) found.to = 'Enter a date and time.';
    if (from !== undefined && to !== undefined && to < from) found.to = 'Choose a time after “From”.';
    setErrors(found);
    if (Object.keys(found).length > 0) return;
    onApply({
      type: draft.type === '' ? undefined : (draft.type as AuditType),
      outcome: draft.outcome === '' ? undefined : (draft.outcome as AuditOutcome),
      user: draft.user.trim() === '' ? undefined : draft.user.trim(),
      from,
      to,
    });
  }

  function clear() {
    setDraft(EMPTY);
    setErrors({});
    onApply({});
  }

  return (
    <form class="audit-filters" aria-label="Filter events" noValidate onSubmit={apply}>
      <SelectField label="Event type" value={draft.type} onValue={set('type')} options={TYPE_OPTIONS} error={errorOf('type')} />
      <SelectField label="Outcome" value={draft.outcome} onValue={set('outcome')} options={OUTCOME_OPTIONS} error={errorOf('outcome')} />
      <TextField
        {...VERBATIM}
        label="User"
        value={draft.user}
        onValue={set('user')}
        maxLength={200}
        hint="An id, or part of a name, email or login."
        error={errorOf('user')}
      />
      <TextField type="datetime-local" label="From" value={draft.from} onValue={set('from')} hint="Your local time." error={errorOf('from')} />
      <TextField type="datetime-local" label="To" value={draft.to} onValue={set('to')} hint="Your local time." error={errorOf('to')} />
      <FormActions submit="Apply filters" pending={false} pendingLabel="Applying…">
        <Button variant="secondary" onClick={clear}>
          Clear filters
        </Button>
      </FormActions>
    </form>
  );
}
