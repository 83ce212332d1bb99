import { ApiError, api } from '../../../lib/api';
import type { EmailSettings, TestEmailResult, TestStage } from '../../../types/api';

/** A step of the staged check (settings, secrets, token, dns, connect, tls, auth, send: each transport has its own), and the check's answer. */
export type { TestEmailResult, TestStage, TestStageOutcome } from '../../../types/api';

/** Settings from the form, saved or not, to test instead of the saved ones. */
export interface UnsavedSettings {
  settings: EmailSettings;
  /** needed when they change where mail goes (as for a save) */
  currentPassword?: string;
}

/**
 * Checks the saved settings — or `unsaved`, the form's values, without saving them — step by step
 * and sends `to` a test message: 200 `{ok: true, stages}`, or 502 `{ok: false, error, message,
 * hint, stages}` (returned here as a result, not thrown). Other refusals throw ApiError: 400 with
 * `fields` (`to`, or a setting), 400 `reauthentication_required` / `invalid_current_password`,
 * 401, 403, 429, network.
 */
export async function sendTestEmail(to: string, unsaved?: UnsavedSettings): Promise<TestEmailResult> {
  const body =
    unsaved === undefined
      ? { to }
      : { to, settings: unsaved.currentPassword === undefined ? unsaved.settings : { ...unsaved.settings, currentPassword: unsaved.currentPassword } };
  try {
    return await api.post<TestEmailResult>('/api/settings/email/test', body);
  } catch (error) {
    if (error instanceof ApiError && error.status === 502 && error.body.ok === false && Array.isArray(error.body.stages)) {
      return {
        ok: false,
        error: error.code,
        message: error.message,
        hint: typeof error.body.hint === 'string' ? error.body.hint : '',
        stages: (error.body.stages as unknown[]).filter(isStage),
      };
    }
    throw error;
  }
}

function isStage(value: unknown): value is TestStage {
  if (typeof value !== 'object' || value === null) return false;
  const stage = value as Record<string, unknown>;
  return typeof stage.name === 'string' && typeof stage.outcome === 'string' && typeof stage.detail === 'string';
}
