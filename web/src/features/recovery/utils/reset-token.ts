/**
 * Takes the reset token out of the address bar: reset links carry it in the fragment
 * (`#token=…`, never sent to the server), and it is removed at once so it does not stay in
 * history, bookmarks or a shared screen. An old-style or hand-made link may carry it in the
 * query instead (`?token=…`); it is taken and removed the same way (the fragment wins when both
 * are there), and other query parameters stay.
 */
export function takeResetTokenFromLocation(): string | null {
  const { pathname, search, hash } = window.location;
  const query = new URLSearchParams(search);
  const hasHash = hash !== '' && hash !== '#';
  if (!hasHash && !query.has('token')) return null;
  const fromHash = hasHash ? new URLSearchParams(hash.slice(1)).get('token') : null;
  const fromQuery = query.get('token');
  query.delete('token');
  const rest = query.toString();
  window.history.replaceState(window.history.state, '', pathname + (rest === '' ? '' : `?${rest}`));
  const token = fromHash !== null && fromHash !== '' ? fromHash : fromQuery;
  return token === null || token === '' ? null : token;
}
