import { api } from '../../../lib/api';
import type { Delivery } from '../../../types/api';

/** One email Gatehouse sends (or tried to): never its body or token. */
export type { Delivery } from '../../../types/api';
export type DeliveryKind = Delivery['kind'];
export type DeliveryStatus = Delivery['status'];

/** Newest first; `before` is the id of the last delivery already shown. System admins only. */
export async function getDeliveries(options: { limit: number; before?: string | undefined }): Promise<Delivery[]> {
  const query = new URLSearchParams({ limit: String(options.limit) });
  if (options.before !== undefined) query.set('before', options.before);
  const { deliveries } = await api.get<{ deliveries: Delivery[] }>(`/api/mail/deliveries?${query}`);
  return deliveries;
}
