import { useEffect, useState } from 'preact/hooks';

// Why the last session ended, for the sign-in page to say once. Kept in memory only: it is
// set just before the app moves to /login (sign out everywhere, a session the server ended),
// and a reload or a later visit starts without it.
let notice = '';
const listeners = new Set<(text: string) => void>();

export function setSignInNotice(text: string): void {
  notice = text;
  for (const listener of listeners) listener(text);
}

/** The notice while the calling page is shown; it is forgotten when that page goes away. */
export function useSignInNotice(): string {
  const [text, setText] = useState(notice);
  useEffect(() => {
    // It may have been set between the first render and this effect (the server ended the session mid-request).
    setText(notice);
    listeners.add(setText);
    return () => {
      listeners.delete(setText);
      notice = '';
    };
  }, []);
  return text;
}
