import { formatDateTime } from '../../../lib/format-time';
import type { DevMessageSummary } from '../api/get-dev-messages';

export interface MessageListProps {
  messages: readonly DevMessageSummary[];
  selectedId: string | null;
  onOpen: (message: DevMessageSummary) => void;
}

export function MessageList({ messages, selectedId, onOpen }: MessageListProps) {
  return (
    <div class="table-scroll">
      <table class="table">
        <caption class="visually-hidden">Captured emails, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">To</th>
            <th scope="col">Subject</th>
          </tr>
        </thead>
        <tbody>
          {messages.map((m) => {
            const selected = m.id === selectedId;
            return (
              <tr key={m.id} class={selected ? 'row-selected' : undefined}>
                <td class="nowrap">
                  <time dateTime={m.at}>{formatDateTime(m.at)}</time>
                </td>
                <td class="wrap-anywhere">{m.to}</td>
                <td>
                  <button type="button" class="button button-link" aria-current={selected ? 'true' : undefined} onClick={() => onOpen(m)}>
                    {m.subject === '' ? '(no subject)' : m.subject}
                    {/* Several emails often share a subject: the name says whose each one is. */}
                    <span class="visually-hidden">, to {m.to}</span>
                  </button>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
