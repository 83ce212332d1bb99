import { useEffect, useState } from 'preact/hooks';
import { api } from './api';

/** GET /api/auth/password-policy (public): the numbers behind the server's length rule. */
export interface PasswordPolicy {
  minLength: number;
  maxLength: number;
}

let loaded: PasswordPolicy | undefined;
let loading: Promise<PasswordPolicy> | undefined;

/** Asked once per page load; a failure is forgotten so the next form asks again. */
export function loadPasswordPolicy(): Promise<PasswordPolicy> {
  loading ??= api.get<PasswordPolicy>('/api/auth/password-policy').then(
    (policy) => (loaded = policy),
    (error: unknown) => {
      loading = undefined;
      throw error;
    },
  );
  return loading;
}

/** The policy once known; null until then, or for good when it cannot be read (the server still enforces it). */
export function usePasswordPolicy(): PasswordPolicy | null {
  const [policy, setPolicy] = useState<PasswordPolicy | null>(loaded ?? null);
  useEffect(() => {
    if (loaded !== undefined) return;
    let live = true;
    loadPasswordPolicy().then(
      (p) => live && setPolicy(p),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, []);
  return policy;
}

/**
 * Characters as the server counts them: code points after NFKC normalisation, so "🔑" is one
 * character (two UTF-16 units) and a composed "é" is one, however it was typed.
 */
export function countPasswordCharacters(password: string): number {
  return [...password.normalize('NFKC')].length;
}
