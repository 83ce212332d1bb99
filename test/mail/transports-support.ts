import { expect } from 'vitest';
import type { DiagnoseResult } from '../../src/mail/diagnose.js';
import { normalizeEmailSettings, type EmailSettings } from '../../src/mail/settings.js';
import { clientSecretApp, graphTransport, smtpOauth2Transport, TENANT } from './ms365-setup.js';

/*
 * Shared by transports-diagnose.test.ts and transports-diagnose-mi.test.ts: the staged email
 * check (diagnoseEmail) run for real against the Microsoft 365 fakes of ms365-fakes.ts.
 */

export const MESSAGE_ID_DOMAIN = 'gatehouse.contoso.test';
export const MAIL_SECRETS = /^(smtp|mail)-/;

export const STAGES = {
  smtp: ['settings', 'secrets', 'dns', 'connect', 'tls', 'auth', 'send'],
  'smtp-oauth2': ['settings', 'secrets', 'token', 'dns', 'connect', 'tls', 'auth', 'send'],
  graph: ['settings', 'secrets', 'token', 'dns', 'connect', 'tls', 'send'],
} as const;

/** The sender mailbox's address in the secret smtp-from; the app's client secret in mail-client-secret (its client id in the overrides). */
const SENDER_AND_APP: Partial<EmailSettings> = { emailSecretName: 'smtp-from', ...clientSecretApp(TENANT, null, 'mail-client-secret') };

/** Microsoft Graph as the sender mailbox. */
export function graphSettings(overrides: Partial<EmailSettings> = {}): EmailSettings {
  return normalizeEmailSettings(graphTransport({ ...SENDER_AND_APP, ...overrides }));
}

/** SMTP with XOAUTH2 to the fake on 127.0.0.1 (STARTTLS with the test CA's certificate). */
export function oauth2Settings(port: number, overrides: Partial<EmailSettings> = {}): EmailSettings {
  return normalizeEmailSettings(smtpOauth2Transport(port, { ...SENDER_AND_APP, ...overrides }));
}

export type Failed = Extract<DiagnoseResult, { ok: false }>;

/** The result as a failure; a success fails the test with its stages. */
export function failed(result: DiagnoseResult): Failed {
  if (result.ok) throw new Error(`expected the check to fail, it passed: ${JSON.stringify(result.stages)}`);
  return result;
}

/** `name:outcome` for every stage, in order. */
export function outcomes(result: DiagnoseResult): string {
  return result.stages.map((s) => `${s.name}:${s.outcome}`).join(' ');
}

/** The one failed stage's name (and that there is exactly one). */
export function failedStage(result: DiagnoseResult): string {
  const failures = result.stages.filter((s) => s.outcome === 'failed');
  expect(failures, outcomes(result)).toHaveLength(1);
  return failures[0]!.name;
}

export interface Expected {
  error: string;
  stage: string;
  message: RegExp;
  hint: RegExp;
}

/** The code, the failed stage, the message and the hint; every stage of the transport is listed, the later ones skipped. */
export function expectFailure(result: DiagnoseResult, transport: keyof typeof STAGES, expected: Expected): Failed {
  const failure = failed(result);
  expect({ error: failure.error, stage: failedStage(failure) }, `${failure.message} — ${failure.hint}`).toEqual({ error: expected.error, stage: expected.stage });
  expect(failure.message).toMatch(expected.message);
  expect(failure.hint).toMatch(expected.hint);
  expect(failure.stages.map((s) => s.name)).toEqual(STAGES[transport]);
  const at = STAGES[transport].indexOf(expected.stage as never);
  expect(failure.stages.slice(0, at).every((s) => s.outcome === 'ok'), outcomes(failure)).toBe(true);
  expect(failure.stages.slice(at + 1).every((s) => s.outcome === 'skipped'), outcomes(failure)).toBe(true);
  return failure;
}

/** A passing check: every stage of the transport, in order, ok. */
export function expectSuccess(result: DiagnoseResult, transport: keyof typeof STAGES): void {
  if (!result.ok) throw new Error(`expected the check to pass: ${result.error}: ${result.message} — ${result.hint} (${outcomes(result)})`);
  expect(outcomes(result)).toBe(STAGES[transport].map((name) => `${name}:ok`).join(' '));
}

/** Any access token the fakes issue (fake-entra-… / fake-mi-…). */
const TOKEN = /fake-(entra|mi)-[A-Za-z0-9_-]{8,}/;

/** Neither a secret value nor a token appears anywhere in the result. */
export function expectNothingSecret(result: DiagnoseResult, secrets: string[]): void {
  const json = JSON.stringify(result);
  for (const secret of secrets) {
    expect(json.includes(secret), `a secret value appears in the result: ${json}`).toBe(false);
    expect(json.includes(Buffer.from(secret).toString('base64')), 'a secret value (base64) appears in the result').toBe(false);
  }
  expect(json).not.toMatch(TOKEN);
}

/** The message as delivered: Auto-Submitted, a Message-ID in the domain given, once. */
export function expectGeneratedHeaders(headers: { autoSubmitted: string | undefined; messageId: string | undefined }): void {
  expect(headers.autoSubmitted).toBe('auto-generated');
  expect(headers.messageId).toMatch(new RegExp(`^<[^@<>\\s]+@${MESSAGE_ID_DOMAIN.replace(/\./g, '\\.')}>$`));
}
