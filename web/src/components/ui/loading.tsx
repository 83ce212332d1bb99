export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p role="status" class="loading">
      {label}
    </p>
  );
}
