export interface SecretStatusProps {
  /** what the field holds now */
  typed: string;
  /** the name the server checked (the saved one); null when none is saved */
  checked: string | null;
  /** the server's answer for `checked`; null when the saved settings do not use this secret */
  resolves: boolean | null;
}

/** Whether the saved secret name resolves in the secret store right now. Never a value. */
export function SecretStatus({ typed, checked, resolves }: SecretStatusProps) {
  const saved = checked ?? '';
  if (typed.trim() === '' && saved === '') return null;
  // The answer is about the saved name; a name being edited (or not used until saved) has not been looked up yet.
  if (typed.trim() !== saved || resolves === null) {
    return <span class="secret-status">Save to check whether this secret exists.</span>;
  }
  return resolves ? (
    <span class="secret-status secret-status-found">
      <span aria-hidden="true">✓ </span>
      <span>Found in the secret store</span>
    </span>
  ) : (
    <span class="secret-status secret-status-missing">
      <span aria-hidden="true">✗ </span>
      <span>Not found in the secret store</span>
    </span>
  );
}
