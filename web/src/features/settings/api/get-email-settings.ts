import { api } from '../../../lib/api';

/** The "Forgot password" email form (DESIGN §1): secret *names* only, never their values. */
export interface EmailSettings {
  host: string;
  port: number;
  emailSecretName: string;
  /** null: a relay that takes mail without AUTH */
  passwordSecretName: string | null;
  sslEnabled: boolean;
}

/** What GET and PUT answer: the settings, whether they were ever saved, and whether each named secret resolves now. */
export interface EmailSettingsState extends EmailSettings {
  configured: boolean;
  /** password is null when no password secret is named */
  secretsResolve: { email: boolean; password: boolean | null };
  /** the secret store could not be read (outage, timeout) */
  secretsError?: string;
}

/** 200 with defaults (port 587, SSL on) and `configured: false` before the first save. System admins only. */
export async function getEmailSettings(): Promise<EmailSettingsState> {
  return api.get<EmailSettingsState>('/api/settings/email');
}
