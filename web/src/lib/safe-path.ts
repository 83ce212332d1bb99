/**
 * The in-app path to return to after sign-in, or "/". Only a same-origin path is accepted:
 * "//evil.example" and "/\evil.example" would be read by browsers as another host (open redirect).
 */
export function safeReturnPath(value: string | null | undefined): string {
  if (!value || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\')) return '/';
  if (value.startsWith('/login')) return '/';
  return value;
}
