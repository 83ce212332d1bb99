import { api } from '../../../lib/api';
import type { EmailSettings, EmailSettingsState } from '../../../types/api';

/**
 * 200 with the saved settings and a fresh secret check. Changing where mail goes or with which
 * credentials (transport, host, port, sender, a secret name, tenant, client, credential kind) and
 * the first save need the admin's `currentPassword`: without it 400 `reauthentication_required`,
 * wrong 400 `invalid_current_password` (429 after repeated misses, 401 once the session was ended
 * for them). 400 `invalid_request` with `fields` named after the settings (only the transport's
 * own are checked; a secret name outside MAIL_SECRET_NAME_PATTERN included).
 */
export async function saveEmailSettings(settings: EmailSettings, currentPassword?: string): Promise<EmailSettingsState> {
  return api.put<EmailSettingsState>('/api/settings/email', currentPassword === undefined ? settings : { ...settings, currentPassword });
}
