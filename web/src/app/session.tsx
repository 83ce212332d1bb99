import { createContext, type ComponentChildren } from 'preact';
import { useCallback, useContext, useEffect, useMemo, useState } from 'preact/hooks';
import { useLocation } from 'wouter-preact';
import { getCurrentUser } from '../features/auth/api/get-current-user';
import { signOut as signOutRequest } from '../features/auth/api/sign-out';
import { setSignInNotice } from '../features/auth/sign-in-notice';
import { onApiError } from '../lib/api';
import { mayHaveSession } from '../lib/brand';
import type { User } from '../types/api';

export type SessionState =
  | { status: 'loading'; user: null }
  | { status: 'signed-out'; user: null }
  | { status: 'signed-in'; user: User }
  /** /api/auth/me failed for another reason than 401 (server down) */
  | { status: 'error'; user: null };

export interface Session {
  state: SessionState;
  setUser: (user: User | null) => void;
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

function stateOf(user: User | null): SessionState {
  return user === null ? { status: 'signed-out', user: null } : { status: 'signed-in', user };
}

export function SessionProvider({ children }: { children: ComponentChildren }) {
  // No session cookie came with this page: signed out at once, without asking /api/auth/me (its 401 would be a console error on every signed-out page).
  const [state, setState] = useState<SessionState>(() => (mayHaveSession() ? { status: 'loading', user: null } : stateOf(null)));

  const setUser = useCallback((user: User | null) => setState(stateOf(user)), []);
  const refresh = useCallback(async () => {
    try {
      setState(stateOf(await getCurrentUser()));
    } catch {
      setState({ status: 'error', user: null });
    }
  }, []);
  const [, navigate] = useLocation();
  const signOut = useCallback(async () => {
    try {
      await signOutRequest();
    } catch {
      // Signing out is idempotent on the server; the page still leaves the signed-in view.
    }
    setSignInNotice('You are signed out.');
    // Same tick: the next render already sees the sign-in page, never a guarded page without a user.
    navigate('/login');
    setState(stateOf(null));
  }, [navigate]);

  useEffect(() => {
    if (mayHaveSession()) void refresh();
    // The server is the judge: an expired session or a required password change seen by any call updates the page.
    return onApiError((error) => {
      if (error.code === 'unauthenticated') setState(stateOf(null));
      else if (error.code === 'password_change_required') void refresh();
    });
  }, [refresh]);

  const session = useMemo(() => ({ state, setUser, refresh, signOut }), [state, setUser, refresh, signOut]);
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error('useSession outside SessionProvider');
  return session;
}

export function isAdmin(user: User | null): boolean {
  return user !== null && user.role === 'system-admin';
}
