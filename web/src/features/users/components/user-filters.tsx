import { useEffect, useRef, useState } from 'preact/hooks';
import { SelectField, TextField } from '../../../components/ui';
import type { UserStatusFilter } from '../../../../../src/accounts/api-schemas';
import type { Role } from '../../../types/api';
import type { UserFilter } from '../api/list-users';

const ROLE_FILTER_OPTIONS = [
  { value: '', label: 'All roles' },
  { value: 'system-admin', label: 'System admin' },
  { value: 'user', label: 'User' },
];

export const STATUS_FILTER_LABELS: Record<UserStatusFilter, string> = {
  active: 'Active',
  locked: 'Locked',
  disabled: 'Disabled',
  must_change_password: 'Must change password',
  no_password: 'No password yet',
};
const STATUS_FILTER_OPTIONS = [{ value: '', label: 'Any status' }, ...Object.entries(STATUS_FILTER_LABELS).map(([value, label]) => ({ value, label }))];

/** How long typing may pause before the search runs. */
const SEARCH_DELAY_MS = 300;

export interface UserFiltersProps {
  onChange: (filter: UserFilter) => void;
}

/**
 * Search (name, email or username), role and status. The selects apply at once; the search after
 * a pause in typing, or at once on Enter.
 */
export function UserFilters({ onChange }: UserFiltersProps) {
  const [q, setQ] = useState('');
  const [role, setRole] = useState('');
  const [status, setStatus] = useState('');
  // The search waits for a pause in typing. When it runs it reads the fields as they are then,
  // not as they were at the keystroke: a role or status chosen during the pause stays chosen.
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const current = useRef({ q, role, status });
  useEffect(() => () => clearTimeout(timer.current), []);

  /** Apply these fields now; a search still waiting is covered by this one. */
  const apply = (next: { q: string; role: string; status: string }) => {
    clearTimeout(timer.current);
    onChange({
      ...(next.q.trim() === '' ? {} : { q: next.q.trim() }),
      ...(next.role === '' ? {} : { role: next.role as Role }),
      ...(next.status === '' ? {} : { status: next.status as UserStatusFilter }),
    });
  };

  return (
    <form
      class="user-filters"
      role="search"
      aria-label="Find users"
      noValidate
      onSubmit={(event) => {
        event.preventDefault();
        apply(current.current);
      }}
    >
      <TextField
        label="Search users"
        type="search"
        hint="Name, email or username"
        autocomplete="off"
        spellcheck={false}
        maxLength={200}
        value={q}
        onValue={(value) => {
          setQ(value);
          current.current = { ...current.current, q: value };
          clearTimeout(timer.current);
          timer.current = setTimeout(() => apply(current.current), SEARCH_DELAY_MS);
        }}
      />
      <SelectField
        label="Filter by role"
        value={role}
        options={ROLE_FILTER_OPTIONS}
        onValue={(value) => {
          setRole(value);
          current.current = { ...current.current, role: value };
          apply(current.current);
        }}
      />
      <SelectField
        label="Filter by status"
        value={status}
        options={STATUS_FILTER_OPTIONS}
        onValue={(value) => {
          setStatus(value);
          current.current = { ...current.current, status: value };
          apply(current.current);
        }}
      />
    </form>
  );
}
