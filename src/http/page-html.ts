export interface PageBranding {
  /** BRAND_NAME */
  brandName: string;
  /** BRAND_LOGO_URL: a same-origin path or a data: image URL; undefined: the built-in mark */
  brandLogoUrl: string | undefined;
}

/** index.html as served: one copy for requests that carry a session cookie, one for those that do not. */
export interface PageHtml {
  withSessionCookie: string;
  withoutSessionCookie: string;
}

/**
 * The built index.html with the brand written in (title, description, noscript text, and
 * `<meta name="brand-name">` / `<meta name="brand-logo">` that the app reads), so a signed-out
 * page needs no request to learn it. `<meta name="session-hint">` says whether the request
 * carried a session cookie: without one the app does not ask /api/auth/me (whose 401 would be
 * an error in the browser's console on every signed-out page). The cookie stays HttpOnly.
 */
export function brandPageHtml(template: string, branding: PageBranding): PageHtml {
  const name = escapeHtml(branding.brandName);
  const logo = escapeHtml(branding.brandLogoUrl ?? '');
  const branded = template
    .replace(/<title>[^<]*<\/title>/, `<title>${name}</title>`)
    .replace(/(<meta name="description" content=")[^"]*(")/, `$1Sign in to ${name}.$2`)
    .replace(/(<meta name="brand-name" content=")[^"]*(")/, `$1${name}$2`)
    .replace(/(<meta name="brand-logo" content=")[^"]*(")/, `$1${logo}$2`)
    .replace(/(<noscript>)[^<]*(<\/noscript>)/, `$1${name} needs JavaScript. Turn it on and reload the page.$2`);
  const hint = (value: 'present' | 'absent'): string => branded.replace(/(<meta name="session-hint" content=")[^"]*(")/, `$1${value}$2`);
  return { withSessionCookie: hint('present'), withoutSessionCookie: hint('absent') };
}

/** Text for an HTML attribute or element. */
function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
