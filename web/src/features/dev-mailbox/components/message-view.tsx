import { useEffect, useRef } from 'preact/hooks';
import { formatDateTime } from '../../../lib/format-time';
import { devMessageHtmlUrl, type DevMessage } from '../api/get-dev-message';

/**
 * One captured email: its HTML in a sandboxed frame (no scripts, no same-origin access; links
 * may open a new tab or, on a click, the top window, so the Reset Password button works as it
 * would in a mail client), and its text part.
 */
export function MessageView({ message }: { message: DevMessage }) {
  const headingRef = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    headingRef.current?.focus();
  }, [message.id]);

  const subject = message.subject === '' ? '(no subject)' : message.subject;
  return (
    <section class="card" aria-labelledby="message-heading">
      <h2 id="message-heading" ref={headingRef} tabIndex={-1}>
        {subject}
      </h2>
      <dl class="details">
        <div>
          <dt>From</dt>
          <dd>{message.from}</dd>
        </div>
        <div>
          <dt>To</dt>
          <dd>{message.to}</dd>
        </div>
        <div>
          <dt>Received</dt>
          <dd>
            <time dateTime={message.at}>{formatDateTime(message.at)}</time>
          </dd>
        </div>
      </dl>
      {message.html !== null && (
        <>
          <h3>HTML preview</h3>
          <iframe
            key={message.id}
            class="mail-preview"
            src={devMessageHtmlUrl(message.id)}
            title={`Email: ${subject}`}
            sandbox="allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"
            referrerpolicy="no-referrer"
          />
        </>
      )}
      <h3>Text</h3>
      <pre class="mail-text">{message.text}</pre>
    </section>
  );
}
