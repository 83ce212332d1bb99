/**
 * What the server wrote into index.html as it served the page: the product's name and logo
 * (BRAND_NAME, BRAND_LOGO_URL), and whether the request carried a session cookie. Read once;
 * no request is needed. In the Vite dev server the defaults of index.html apply.
 */
function meta(name: string): string {
  return document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content.trim() ?? '';
}

export const BRAND_NAME = meta('brand-name') || 'Gatehouse';

/** A same-origin path or a data: image URL; null: the built-in mark. */
export const BRAND_LOGO_URL: string | null = meta('brand-logo') || null;

/**
 * False only when the server saw no session cookie on this page load: asking /api/auth/me then
 * could only answer 401 (an error in the console on every signed-out page). The cookie itself
 * is HttpOnly; this says nothing about whether its session is still valid.
 */
export function mayHaveSession(): boolean {
  return meta('session-hint') !== 'absent';
}
