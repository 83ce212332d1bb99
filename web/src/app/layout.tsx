import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { Link, useLocation } from 'wouter-preact';
import { BRAND_LOGO_URL, BRAND_NAME } from '../lib/brand';
import { ROLE_LABELS } from '../types/api';
import { isAdmin, useSession } from './session';

export function Layout({ children }: { children: ComponentChildren }) {
  const [location] = useLocation();
  const mainRef = useRef<HTMLElement>(null);
  const firstLocation = useRef(true);

  // After an in-app navigation, focus moves to the new page (as a full page load would) so
  // screen readers announce it and the next Tab starts at the top of the content.
  useEffect(() => {
    if (firstLocation.current) {
      firstLocation.current = false;
      return;
    }
    const heading = mainRef.current?.querySelector<HTMLElement>('h1');
    (heading ?? mainRef.current)?.focus({ preventScroll: false });
  }, [location]);

  return (
    <>
      <Header />
      <main id="main" ref={mainRef} tabIndex={-1} class="main">
        {children}
      </main>
    </>
  );
}

function Header() {
  const { state, signOut } = useSession();
  const [location] = useLocation();
  const user = state.user;
  const showNav = user !== null && !user.mustChangePassword;

  return (
    <header class="site-header">
      <div class="site-header-inner">
        {showNav ? (
          <Link href="/" class="brand">
            <Brand />
          </Link>
        ) : (
          <span class="brand">
            <Brand />
          </span>
        )}
        {showNav && (
          <nav aria-label="Main" class="site-nav">
            <ul>
              <NavLink href="/" current={location}>
                Home
              </NavLink>
              {isAdmin(user) && (
                <>
                  <NavLink href="/users" current={location}>
                    Users
                  </NavLink>
                  <NavLink href="/settings" current={location}>
                    Settings
                  </NavLink>
                  <NavLink href="/mail" current={location}>
                    Mail
                  </NavLink>
                  <NavLink href="/audit" current={location}>
                    Audit
                  </NavLink>
                </>
              )}
            </ul>
          </nav>
        )}
        {user !== null && (
          <div class="site-user">
            <span class="site-user-name">
              <span class="visually-hidden">Signed in as </span>
              {user.name}
              <span class="muted site-user-role"> · {ROLE_LABELS[user.role]}</span>
            </span>
            {!user.mustChangePassword && (
              <Link href="/account" class={location === '/account' ? 'nav-link nav-link-active' : 'nav-link'} aria-current={location === '/account' ? 'page' : undefined}>
                My account
              </Link>
            )}
            <button
              type="button"
              class="button button-secondary"
              onClick={() => void signOut()}
            >
              Sign out
            </button>
          </div>
        )}
      </div>
    </header>
  );
}

/** The logo (BRAND_LOGO_URL, or the built-in mark) and the name; the logo is decoration next to the name. */
function Brand() {
  return (
    <>
      {BRAND_LOGO_URL !== null ? (
        <img class="brand-logo" src={BRAND_LOGO_URL} alt="" width={32} height={32} />
      ) : (
        <svg class="brand-logo" viewBox="0 0 32 32" width="32" height="32" aria-hidden="true" focusable="false">
          <rect class="brand-mark-bg" width="32" height="32" rx="7" />
          <path d="M8 26V13l8-6 8 6v13h-5v-7a3 3 0 0 0-6 0v7z" class="brand-mark-fg" />
        </svg>
      )}
      <span class="brand-name">{BRAND_NAME}</span>
    </>
  );
}

function NavLink({ href, current, children }: { href: string; current: string; children: ComponentChildren }) {
  const active = current === href;
  return (
    <li>
      <Link href={href} class={active ? 'nav-link nav-link-active' : 'nav-link'} aria-current={active ? 'page' : undefined}>
        {children}
      </Link>
    </li>
  );
}
