import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Db } from '../db/index.js';
import type { DeliveredVia } from '../db/schema.js';
import { saveSettingsRow, type EmailSettings } from './settings.js';

/**
 * Where every email goes: the dev mailbox on this machine, or the mail server of the saved email
 * settings. Stored in the settings table under its own key, so saving email settings never moves
 * mail by itself once an admin chose; the environment can fix it (MAIL_DEV_INBOX, production).
 */
export const DELIVERY_TARGETS = ['dev-mailbox', 'server'] as const;
export type DeliveryTarget = (typeof DELIVERY_TARGETS)[number];
export type { DeliveredVia };

const KEY = 'delivery';

/** Why the target cannot be changed here: MAIL_DEV_INBOX=true, or no dev mailbox runs (production, MAIL_DEV_INBOX=false). */
export type DeliveryTargetLock = 'forced-dev-mailbox' | 'no-dev-mailbox';

export interface DeliveryTargetState {
  /** where mail goes now */
  target: DeliveryTarget;
  /** what an admin chose; null: never chosen (the dev mailbox until email settings are first saved, then the server) */
  chosen: DeliveryTarget | null;
  /** null when an admin may switch it */
  lockedBy: DeliveryTargetLock | null;
  /** whether the dev mailbox runs in this server */
  devMailbox: boolean;
  /** whether email settings are saved (switching to the server needs them) */
  serverConfigured: boolean;
}

export async function findDeliveryTarget(db: Db): Promise<DeliveryTarget | undefined> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', KEY).executeTakeFirst();
  if (row === undefined) return undefined;
  try {
    const parsed = JSON.parse(row.value) as { target?: unknown };
    return DELIVERY_TARGETS.find((t) => t === parsed.target);
  } catch {
    return undefined;
  }
}

export async function saveDeliveryTarget(db: Db, clock: Clock, target: DeliveryTarget, actorId: string | null): Promise<void> {
  await saveSettingsRow(db, clock, KEY, { target }, actorId);
}

/**
 * The rule, on values alone: MAIL_DEV_INBOX=true forces the dev mailbox (while it runs); without
 * a dev mailbox (production, MAIL_DEV_INBOX=false) mail goes to the server; otherwise the admin's
 * choice, and before any choice the dev mailbox until email settings are saved (as before).
 */
export function effectiveDeliveryTarget(o: {
  config: Pick<Config, 'mailDevInbox'>;
  devMailboxRuns: boolean;
  chosen: DeliveryTarget | undefined;
  settingsSaved: boolean;
}): DeliveryTargetState {
  const base = { chosen: o.chosen ?? null, devMailbox: o.devMailboxRuns, serverConfigured: o.settingsSaved };
  if (!o.devMailboxRuns) return { ...base, target: 'server', lockedBy: 'no-dev-mailbox' };
  if (o.config.mailDevInbox === true) return { ...base, target: 'dev-mailbox', lockedBy: 'forced-dev-mailbox' };
  return { ...base, target: o.chosen ?? (o.settingsSaved ? 'server' : 'dev-mailbox'), lockedBy: null };
}

/** What the outbox records for a message sent to this target with these settings. */
export function deliveredVia(target: DeliveryTarget, settings: Pick<EmailSettings, 'transport'>): DeliveredVia {
  return target === 'dev-mailbox' ? 'dev-mailbox' : settings.transport;
}
