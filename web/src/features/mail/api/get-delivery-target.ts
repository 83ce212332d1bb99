import { api } from '../../../lib/api';
import type { DeliveryTargetState } from '../../../types/api';

export type { DeliveryTargetState } from '../../../types/api';

/** Where every email goes now: the dev mailbox or your mail server. System admins only. */
export async function getDeliveryTarget(): Promise<DeliveryTargetState> {
  return api.get<DeliveryTargetState>('/api/settings/delivery');
}
