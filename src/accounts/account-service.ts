import { BlockList, isIP } from 'node:net';
import type { Clock } from '../clock.js';
import type { Db } from '../db/index.js';
import { invalidInput, notFound } from '../errors.js';
import { rateLimitKeyOfIp } from '../limits/client-ip.js';
import type { AccountSession } from './account-schemas.js';
import { editUser, type AccountDeps } from './service.js';
import { listUserSessions, revokeUserSessionByPublicId, revokeUserSessions, type ValidSession } from './sessions.js';
import { describeDevice } from './user-agent.js';
import type { User } from './users-repo.js';

// "My account": what any signed-in user may see and do about their own account and sessions.

/** Shown for an address on this machine or a private network; there is no GeoIP database to name a place. */
export const LOCAL_NETWORK_PLACE = 'This device’s network';

const LOCAL = new BlockList();
LOCAL.addSubnet('127.0.0.0', 8, 'ipv4');
LOCAL.addSubnet('10.0.0.0', 8, 'ipv4');
LOCAL.addSubnet('172.16.0.0', 12, 'ipv4');
LOCAL.addSubnet('192.168.0.0', 16, 'ipv4');
LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LOCAL.addSubnet('100.64.0.0', 10, 'ipv4');
LOCAL.addAddress('::1', 'ipv6');
LOCAL.addSubnet('fc00::', 7, 'ipv6');
LOCAL.addSubnet('fe80::', 10, 'ipv6');

/**
 * The address as the list shows it — an IPv6 client by its /64, as the rate limits count it,
 * an IPv4-mapped address as plain IPv4 — and whether it is this machine's or a private network.
 */
export function describeAddress(ip: string | null): { ip: string | null; place: string | null } {
  if (ip === null || ip === '') return { ip: null, place: null };
  const shown = rateLimitKeyOfIp(ip);
  const address = ip.includes('%') ? ip.slice(0, ip.indexOf('%')) : ip;
  // The mapped form was turned into plain IPv4 by rateLimitKeyOfIp; check that one.
  const checked = isIP(shown) === 4 ? shown : address;
  const version = isIP(checked);
  const local = version !== 0 && LOCAL.check(checked, version === 4 ? 'ipv4' : 'ipv6');
  return { ip: shown, place: local ? LOCAL_NETWORK_PLACE : null };
}

export async function listOwnSessions(deps: { db: Db; clock: Clock }, session: ValidSession): Promise<AccountSession[]> {
  const rows = await listUserSessions(deps, session.user.id, session.tokenHash);
  return rows.map((r) => ({
    id: r.publicId,
    device: describeDevice(r.userAgent).label,
    ...describeAddress(r.ip),
    createdAt: r.createdAt.toISOString(),
    lastSeenAt: r.lastSeenAt.toISOString(),
    current: r.current,
  }));
}

/** Signs out one of the caller's own sessions: its device, and whether it was the caller's. Another user's id and an unknown one get the same 404. */
export async function signOutOwnSession(deps: { db: Db }, session: ValidSession, publicId: string): Promise<{ device: string; current: boolean }> {
  const removed = await revokeUserSessionByPublicId(deps.db, session.user.id, publicId);
  if (removed === null) throw notFound('No such session.');
  return { device: describeDevice(removed.userAgent).label, current: removed.tokenHash === session.tokenHash };
}

/** Signs out every other session of the caller; the number signed out. */
export async function signOutOtherSessions(deps: { db: Db }, session: ValidSession): Promise<number> {
  return revokeUserSessions(deps.db, session.user.id, { exceptTokenHash: session.tokenHash });
}

/** Renames the caller, with the Users page's rule: trimmed, not blank. */
export async function renameSelf(deps: AccountDeps, session: ValidSession, name: string): Promise<User> {
  const trimmed = name.trim();
  if (trimmed.length === 0) throw invalidInput('Some fields are not valid.', { name: 'Required.' });
  return editUser(deps, session.user.id, { name: trimmed });
}
