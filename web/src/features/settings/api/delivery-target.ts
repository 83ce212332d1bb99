import { api } from '../../../lib/api';
import type { DeliveryTargetState } from '../../../types/api';

/** Where every email goes: the dev mailbox on this machine, or the mail server of the saved email settings. */
export type { DeliveryTargetState } from '../../../types/api';
export type DeliveryTarget = DeliveryTargetState['target'];

/** System admins only. */
export async function getDeliveryTarget(): Promise<DeliveryTargetState> {
  return api.get<DeliveryTargetState>('/api/settings/delivery');
}

/**
 * 200 with the new state. 409 `email_settings_not_saved` (the server needs saved settings),
 * 409 `delivery_target_locked` (MAIL_DEV_INBOX, or no dev mailbox here).
 */
export async function setDeliveryTarget(target: DeliveryTarget): Promise<DeliveryTargetState> {
  return api.put<DeliveryTargetState>('/api/settings/delivery', { target });
}
