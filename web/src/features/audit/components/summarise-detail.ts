const MAX_CHARACTERS = 240;

/** A one-line reading of an event's detail: "settings: email · changed: host=smtp.example.com, port=587". */
export function summariseDetail(detail: Record<string, unknown>): string {
  const text = Object.entries(detail)
    .map(([key, value]) => `${key}: ${valueText(value)}`)
    .join(' · ');
  return text.length > MAX_CHARACTERS ? `${text.slice(0, MAX_CHARACTERS - 1)}…` : text;
}

function valueText(value: unknown): string {
  if (value === null || value === undefined) return 'none';
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map(valueText).join(', ');
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k}=${valueText(v)}`).join(', ');
  }
  return String(value);
}
