/**
 * Takes the reset token out of the address bar: reset links carry it in the fragment
 * (`#token=…`, never sent to the server), and it is removed at once so it does not stay in
 * history, bookmarks or a shared screen.
 */
export function takeResetTokenFromLocation(): string | null {
  const hash = window.location.hash;
  if (hash === '' || hash === '#') return null;
  const token = new URLSearchParams(hash.slice(1)).get('token');
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
  return token === null || token === '' ? null : token;
}
