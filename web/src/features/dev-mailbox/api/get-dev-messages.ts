import { ApiError, api } from '../../../lib/api';
import type { DevMessageSummary } from '../../../types/api';

/** A message the dev mailbox captured (DESIGN §2 Pages: only outside production, only on the same machine). */
export type { DevMessageSummary } from '../../../types/api';

/** Newest first; null when the dev mailbox is off (404: production, MAIL_DEV_INBOX=false, or not on this machine). */
export async function getDevMessages(): Promise<DevMessageSummary[] | null> {
  try {
    const { messages } = await api.get<{ messages: DevMessageSummary[] }>('/api/dev/mailbox');
    return messages;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}
