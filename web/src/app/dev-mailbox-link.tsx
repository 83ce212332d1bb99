import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { getDevMessages } from '../features/dev-mailbox/api/get-dev-messages';

/**
 * "Open the dev mailbox", shown only when the dev mailbox answers: production (and any other
 * machine) gets a 404 and never sees the link.
 */
export function DevMailboxLink() {
  const [on, setOn] = useState(false);
  useEffect(() => {
    let live = true;
    getDevMessages().then(
      (messages) => live && setOn(messages !== null),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, []);
  if (!on) return null;
  return (
    <p>
      Working on a development machine? The email lands in the{' '}
      <Link href="/dev/mailbox" class="link">
        dev mailbox
      </Link>
      .
    </p>
  );
}
