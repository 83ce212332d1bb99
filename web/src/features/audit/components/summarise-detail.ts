/** Longer summaries show their start, with the whole text one click away. */
export const DETAIL_PREVIEW_CHARACTERS = 160;

/** A one-line reading of an event's detail: "settings: email · changed: host=smtp.example.com, port=587". */
export function summariseDetail(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .map(([key, value]) => `${key}: ${valueText(value)}`)
    .join(' · ');
}

/** The start of a long summary, ending in "…"; a short one whole. */
export function previewOf(text: string): string {
  return text.length > DETAIL_PREVIEW_CHARACTERS ? `${text.slice(0, DETAIL_PREVIEW_CHARACTERS - 1)}…` : text;
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
