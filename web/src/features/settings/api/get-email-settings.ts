import { api } from '../../../lib/api';
import type { EmailSettingsState } from '../../../types/api';

/** The "Forgot password" email form (DESIGN §1): secret *names* only, never their values; and what GET and PUT answer. */
export type { EmailSettings, EmailSettingsState } from '../../../types/api';

/** 200 with defaults (port 587, SSL on) and `configured: false` before the first save. System admins only. */
export async function getEmailSettings(): Promise<EmailSettingsState> {
  return api.get<EmailSettingsState>('/api/settings/email');
}
