import { api } from '../../../lib/api';

export type DeliveryKind = 'reset' | 'set_password' | 'password_changed';
export type DeliveryStatus = 'queued' | 'sending' | 'sent' | 'retrying' | 'failed' | 'expired';

/** One email Gatehouse sends (or tried to): never its body or token. */
export interface Delivery {
  id: string;
  /** when it was requested, ISO-8601 UTC */
  at: string;
  to: string | null;
  kind: DeliveryKind | string;
  status: DeliveryStatus | string;
  attempts: number;
  lastError: string | null;
}

/** Newest first; `before` is the id of the last delivery already shown. System admins only. */
export async function getDeliveries(options: { limit: number; before?: string | undefined }): Promise<Delivery[]> {
  const query = new URLSearchParams({ limit: String(options.limit) });
  if (options.before !== undefined) query.set('before', options.before);
  const { deliveries } = await api.get<{ deliveries: Delivery[] }>(`/api/mail/deliveries?${query}`);
  return deliveries;
}
