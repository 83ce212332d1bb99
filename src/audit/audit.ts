import type { Clock } from '../clock.js';
import type { Db } from '../db/index.js';
import type { AuditEvent } from './api-schemas.js';

export type AuditType =
  | 'login_succeeded'
  | 'login_failed'
  | 'password_changed'
  | 'password_check_failed'
  | 'account_locked'
  | 'account_unlocked'
  | 'signed_out_everywhere'
  | 'user_created'
  | 'user_updated'
  | 'user_deleted'
  | 'admin_bootstrapped'
  | 'reset_requested'
  | 'reset_email_sent'
  | 'reset_email_failed'
  | 'reset_completed'
  | 'reset_refused'
  | 'admin_reset_sent'
  | 'settings_changed'
  | 'email_test_sent';

export interface AuditActor {
  id: string | null;
  label: string | null;
}

/** How an account appears in the audit log: its username, else its email. */
export function auditLabel(user: { id: string; username: string | null; email: string | null }): AuditActor {
  return { id: user.id, label: user.username ?? user.email };
}

export interface AuditInput {
  type: AuditType;
  actor?: AuditActor | undefined;
  target?: AuditActor | undefined;
  ip?: string | null | undefined;
  outcome: 'success' | 'failure';
  /** never a secret, token, password or full unverified address */
  detail?: Record<string, unknown> | undefined;
}

/** An event as admins see it: its type comes from the API's schema, so listAudit cannot drift from it. */
export type { AuditEvent };

export async function recordAudit(db: Db, clock: Clock, input: AuditInput): Promise<void> {
  await db
    .insertInto('audit_events')
    .values({
      at: clock.now().getTime(),
      type: input.type,
      actor_id: input.actor?.id ?? null,
      actor_label: input.actor?.label ?? null,
      target_id: input.target?.id ?? null,
      target_label: input.target?.label ?? null,
      ip: input.ip ?? null,
      outcome: input.outcome,
      detail: input.detail === undefined ? null : JSON.stringify(input.detail),
    })
    .execute();
}

export async function listAudit(db: Db, options: { limit: number; before?: number | undefined }): Promise<AuditEvent[]> {
  let q = db.selectFrom('audit_events').selectAll().orderBy('id', 'desc').limit(options.limit);
  if (options.before !== undefined) q = q.where('id', '<', options.before);
  const rows = await q.execute();
  return rows.map((r) => ({
    id: Number(r.id),
    at: new Date(r.at).toISOString(),
    type: r.type,
    actor: r.actor_id === null && r.actor_label === null ? null : { id: r.actor_id, label: r.actor_label },
    target: r.target_id === null && r.target_label === null ? null : { id: r.target_id, label: r.target_label },
    ip: r.ip,
    outcome: r.outcome,
    detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
  }));
}
