import { api } from '../../../lib/api';
import type { EmailSettings, EmailSettingsState } from './get-email-settings';

/** 200 with the saved settings and a fresh secret check; 400 `invalid_request` with `fields` (host, port, emailSecretName, passwordSecretName). */
export async function saveEmailSettings(settings: EmailSettings): Promise<EmailSettingsState> {
  return api.put<EmailSettingsState>('/api/settings/email', settings);
}
