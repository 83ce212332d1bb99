import type { AppDeps } from '../deps.js';
import type { Db } from '../db/index.js';
import { auditLabel as labelOf, auditRow, type AuditInput } from '../audit/audit.js';
import { normalizeEmail } from '../accounts/identifiers.js';
import type { UserRow } from '../accounts/users-repo.js';
import type { DeliveryHandler, DeliveryRow, Prepared, PreparedSend, SendOutcome } from '../mail/outbox.js';
import { emailBrand, passwordChangedEmail, resetPasswordEmail, setPasswordEmail } from '../mail/templates.js';
import { deleteResetTokens, mintResetTokens, type TokenPurpose } from './tokens.js';

// The outbox worker's side of recovery (it runs in the delivery thread): what each kind of
// delivery becomes when it is sent. The worker hands over its rows a batch at a time: one query
// finds their accounts, one upsert mints their links, and the outcomes' audit events and voided
// links are written in one statement each.

type Deps = Pick<AppDeps, 'db' | 'clock' | 'random' | 'config'>;

/** What a send carried, for its outcome: the account, and the link when there was one. */
interface Carried {
  user: UserRow;
  token: string | undefined;
}

/** The worker's handlers: they look the accounts up and, when sending, mint the tokens. */
export function recoveryHandlers(deps: Deps): Record<DeliveryRow['kind'], DeliveryHandler> {
  const carried = new WeakMap<PreparedSend, Carried>();
  const carry = (send: PreparedSend, c: Carried): PreparedSend => (carried.set(send, c), send);
  const settle = (trx: Db, outcomes: readonly SendOutcome[]): Promise<void> => settleSends(trx, deps, outcomes.flatMap((o) => withCarried(o, carried.get(o.send))));

  const linkEmail = (purpose: TokenPurpose): DeliveryHandler => ({
    async prepare(rows) {
      const userOf = await findRecipients(deps.db, rows);
      const nowMs = deps.clock.now().getTime();
      const decided = rows.map((row): Prepared | { row: DeliveryRow; user: UserRow & { email: string }; expiresAtMs: number } => {
        const user = userOf(row);
        // Unknown, disabled and email-less accounts get nothing; the request leaves no delivery behind.
        if (user === undefined || user.disabled === 1 || user.email === null) return { action: 'drop' };
        if (row.not_after !== null && nowMs >= row.not_after) return { action: 'expire' };
        return { row, user: { ...user, email: user.email }, expiresAtMs: row.not_after ?? nowMs + deps.config.resetTokenTtlMinutes * 60_000 };
      });
      const minting = decided.flatMap((d) => ('action' in d ? [] : [d]));
      // In request order: of two requests of one account, the newer one's link is the live one.
      const byRequest = [...minting].sort((a, b) => a.row.requested_at - b.row.requested_at);
      const minted = await mintResetTokens(
        deps.db,
        deps.random,
        byRequest.map((m) => ({ user: m.user, deliveryId: m.row.id, purpose, nowMs, expiresAtMs: m.expiresAtMs })),
      );
      const tokenOf = new Map(byRequest.map((m, i) => [m.row, minted[i]!]));
      const render = purpose === 'set_password' ? setPasswordEmail : resetPasswordEmail;
      return decided.map((d) => {
        if ('action' in d) return d;
        const token = tokenOf.get(d.row)!;
        const link = `${deps.config.publicUrl.href.replace(/\/$/, '')}/reset-password#token=${token}`;
        // Rounded: a link minted a few milliseconds after the request still says "1 hour", not "59 minutes".
        const validMinutes = Math.max(1, Math.round((d.expiresAtMs - nowMs) / 60_000));
        const message = render({ to: d.user.email, name: d.user.name, link, validMinutes, brand: emailBrand(deps.config) });
        return carry({ action: 'send', userId: d.user.id, toAddress: d.user.email, message }, { user: d.user, token });
      });
    },
    settle,
  });

  return {
    reset: linkEmail('reset'),
    set_password: linkEmail('set_password'),
    password_changed: {
      async prepare(rows) {
        const userOf = await findRecipients(deps.db, rows);
        return rows.map((row): Prepared => {
          const user = userOf(row);
          if (user === undefined || user.email === null) return { action: 'drop' };
          const message = passwordChangedEmail({ to: user.email, name: user.name, at: new Date(row.requested_at), brand: emailBrand(deps.config) });
          return carry({ action: 'send', userId: user.id, toAddress: user.email, message }, { user, token: undefined });
        });
      },
      settle,
    },
  };
}

/**
 * The accounts of a batch of rows, in one query: by id once a row was addressed (a retry goes to
 * the same account), else by the address typed in the request.
 */
async function findRecipients(db: Db, rows: readonly DeliveryRow[]): Promise<(row: DeliveryRow) => UserRow | undefined> {
  const emailOf = (row: DeliveryRow): string => normalizeEmail(row.lookup_email ?? '');
  const ids = [...new Set(rows.flatMap((r) => (r.user_id === null ? [] : [r.user_id])))];
  const emails = [...new Set(rows.flatMap((r) => (r.user_id === null ? [emailOf(r)] : [])))];
  const users = await db
    .selectFrom('users')
    .selectAll()
    .where((eb) => eb.or([...(ids.length > 0 ? [eb('id', 'in', ids)] : []), ...(emails.length > 0 ? [eb('email_normalized', 'in', emails)] : [])]))
    .execute();
  const byId = new Map(users.map((u) => [u.id, u]));
  const byEmail = new Map(users.map((u) => [u.email_normalized, u]));
  return (row) => (row.user_id === null ? byEmail.get(emailOf(row)) : byId.get(row.user_id));
}

const withCarried = (o: SendOutcome, c: Carried | undefined): (SendOutcome & Carried)[] => (c === undefined ? [] : [{ ...o, ...c }]);

/**
 * What the outcomes mean for recovery: a link that never arrived must not stay usable (a retry
 * mints a fresh one), and each outcome is an audit event; the given-up ones tell an admin that
 * the email will never arrive (Audit page).
 */
async function settleSends(trx: Db, deps: Deps, outcomes: readonly (SendOutcome & Carried)[]): Promise<void> {
  const voided: string[] = [];
  const events: AuditInput[] = [];
  for (const o of outcomes) {
    const event = (type: 'reset_email_sent' | 'reset_email_failed' | 'email_given_up', detail?: Record<string, unknown>): AuditInput => ({
      type,
      target: labelOf(o.user),
      ip: o.row.ip,
      outcome: type === 'reset_email_sent' ? 'success' : 'failure',
      detail: { kind: o.row.kind, attempt: o.row.attempts, ...detail },
    });
    if (o.failure === undefined) {
      if (o.token !== undefined) events.push(event('reset_email_sent'));
      continue;
    }
    if (o.token !== undefined) {
      voided.push(o.token);
      events.push(event('reset_email_failed', { error: o.failure.code }));
    }
    if (o.gaveUp) events.push(event('email_given_up', { error: o.failure.code, transient: o.failure.transient }));
  }
  await deleteResetTokens(trx, voided);
  if (events.length > 0) await trx.insertInto('audit_events').values(events.map((e) => auditRow(deps.clock, e))).execute();
}
