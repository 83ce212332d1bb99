import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { Button, FormAlert, Loading, Notice, PageHeader, StatusMessage } from '../../components/ui';
import { getDevMessage, type DevMessage } from '../../features/dev-mailbox/api/get-dev-message';
import { getDevMessages, type DevMessageSummary } from '../../features/dev-mailbox/api/get-dev-messages';
import { MessageList } from '../../features/dev-mailbox/components/message-list';
import { MessageView } from '../../features/dev-mailbox/components/message-view';
import { describeError } from '../../lib/api';
import { useSession } from '../session';

// While the page is open and visible, new mail shows up without a click.
const POLL_EVERY_MS = 5000;

type Box = { kind: 'loading' } | { kind: 'off' } | { kind: 'on'; messages: DevMessageSummary[] };

/**
 * Reachable signed out: someone who forgot their password on a development machine reads the
 * reset email here. The server answers only outside production and only to this machine.
 * Loaded lazily, so the signed-out pages do not carry it.
 */
export default function DevMailboxRoute() {
  const { state } = useSession();
  const [box, setBox] = useState<Box>({ kind: 'loading' });
  const [error, setError] = useState('');
  const [announcement, setAnnouncement] = useState('');
  const [pending, setPending] = useState(false);
  const [selected, setSelected] = useState<DevMessage | null>(null);
  const [openError, setOpenError] = useState('');
  const count = useRef<number | null>(null);
  // Off stays off until the server restarts: no point asking again every few seconds.
  const off = useRef(false);

  const load = useCallback(async (how: 'quiet' | 'announce'): Promise<void> => {
    if (how === 'announce') {
      setPending(true);
      setAnnouncement('');
    }
    try {
      const messages = await getDevMessages();
      setError('');
      if (messages === null) {
        off.current = true;
        setBox({ kind: 'off' });
        return;
      }
      setBox({ kind: 'on', messages });
      const arrived = count.current === null ? 0 : messages.length - count.current;
      count.current = messages.length;
      if (how === 'announce') setAnnouncement(messages.length === 1 ? '1 email.' : `${messages.length} emails.`);
      else if (arrived > 0) setAnnouncement(arrived === 1 ? 'A new email arrived.' : `${arrived} new emails arrived.`);
    } catch (err) {
      setError(describeError(err));
    } finally {
      if (how === 'announce') setPending(false);
    }
  }, []);

  useEffect(() => {
    void load('quiet');
    const timer = window.setInterval(() => {
      if (!off.current && document.visibilityState === 'visible') void load('quiet');
    }, POLL_EVERY_MS);
    return () => window.clearInterval(timer);
  }, [load]);

  async function open(summary: DevMessageSummary): Promise<void> {
    setOpenError('');
    try {
      const message = await getDevMessage(summary.id);
      if (message === null) setOpenError('This email is no longer in the dev mailbox (it keeps the latest 200, until the server restarts).');
      setSelected(message);
    } catch (err) {
      setOpenError(describeError(err));
    }
  }

  const signedOut = state.status === 'signed-out';
  return (
    <>
      <PageHeader title="Dev mailbox">
        {box.kind === 'on' && (
          <Button variant="secondary" pending={pending} onClick={() => void load('announce')}>
            Refresh
          </Button>
        )}
      </PageHeader>
      {box.kind === 'off' ? (
        <section class="card">
          <Notice>
            <p>The dev mailbox is off (production, or MAIL_DEV_INBOX=false, or not on this machine).</p>
          </Notice>
        </section>
      ) : (
        <section class="card" aria-label="Captured emails">
          <p>
            Outside production, and until email settings are saved, Gatehouse delivers its emails here instead of to real inboxes. Only
            this machine can read them.
          </p>
          <StatusMessage>{announcement}</StatusMessage>
          <FormAlert>{error || openError}</FormAlert>
          {box.kind === 'loading' ? (
            error === '' && <Loading label="Loading emails…" />
          ) : box.messages.length === 0 ? (
            <p>No emails yet. Request a password reset and it appears here within a few seconds.</p>
          ) : (
            <MessageList messages={box.messages} selectedId={selected?.id ?? null} onOpen={(m) => void open(m)} />
          )}
        </section>
      )}
      {box.kind === 'on' && selected !== null && <MessageView message={selected} />}
      {signedOut && (
        <p>
          <Link href="/login" class="link">
            Go to sign in
          </Link>
        </p>
      )}
    </>
  );
}
