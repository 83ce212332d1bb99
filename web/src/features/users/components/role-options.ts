import { ROLE_LABELS, type Role } from '../../../types/api';

export const ROLE_OPTIONS: ReadonlyArray<{ value: Role; label: string }> = [
  { value: 'user', label: ROLE_LABELS.user },
  { value: 'system-admin', label: ROLE_LABELS['system-admin'] },
];

export function toRole(value: string): Role {
  return value === 'system-admin' ? 'system-admin' : 'user';
}
