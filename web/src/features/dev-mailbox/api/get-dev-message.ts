import { ApiError, api } from '../../../lib/api';
import type { DevMessage } from '../../../types/api';

export type { DevMessage } from '../../../types/api';

/** One captured message; null when it is gone (the mailbox keeps the latest 200, in memory) or the mailbox is off. */
export async function getDevMessage(id: string): Promise<DevMessage | null> {
  try {
    const { message } = await api.get<{ message: DevMessage }>(`/api/dev/mailbox/${encodeURIComponent(id)}`);
    return message;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

/** Served on its own under a policy that lets nothing in the mail load or run. */
export function devMessageHtmlUrl(id: string): string {
  return `/api/dev/mailbox/${encodeURIComponent(id)}/html`;
}
