import { describe, expect, it } from 'vitest';
import { forwardedForWithoutPorts, rateLimitKeyOfIp } from '../../src/limits/client-ip.js';
import { makeTestApp, type TestContext } from '../helpers/app.js';

describe('rateLimitKeyOfIp', () => {
  it.each([
    // IPv4 stays itself.
    ['203.0.113.7', '203.0.113.7'],
    ['127.0.0.1', '127.0.0.1'],
    // IPv4-mapped IPv6 is the IPv4 client it maps, in any spelling.
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:203.0.113.7', '203.0.113.7'],
    ['::ffff:cb00:7107', '203.0.113.7'],
    ['0:0:0:0:0:ffff:203.0.113.7', '203.0.113.7'],
    ['0000:0000:0000:0000:0000:ffff:cb00:7107', '203.0.113.7'],
    // IPv6 is keyed by its /64.
    ['2001:db8:1:2:aaaa::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:0000:0000:0000:0001', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::/64'],
    ['2001:db8::', '2001:db8::/64'],
    ['2001:db8:0:0:1::', '2001:db8::/64'],
    ['2001:db8:0:1::5', '2001:db8:0:1::/64'],
    ['2001:0:0:1::5', '2001:0:0:1::/64'],
    ['2001::1:2:3:4', '2001::/64'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4::/64'],
    ['::1', '::/64'],
    ['::', '::/64'],
    // A zone id names an interface, not a client.
    ['fe80::1%eth0', 'fe80::/64'],
    ['fe80::abcd:1%25', 'fe80::/64'],
    // Mixed notation that is not IPv4-mapped: the dotted part is in the host half.
    ['2001:db8:1:2::192.0.2.1', '2001:db8:1:2::/64'],
    ['64:ff9b::192.0.2.1', '64:ff9b::/64'],
    // Not an address: unchanged.
    ['', ''],
    ['unknown', 'unknown'],
    ['2001:db8::g', '2001:db8::g'],
  ])('%j → %j', (ip, key) => {
    expect(rateLimitKeyOfIp(ip)).toBe(key);
  });

  it('gives every address of one /64 the same key, and a neighbouring /64 another', () => {
    const inside = ['2001:db8:1:2::', '2001:db8:1:2::1', '2001:db8:1:2:0:0:0:ffff', '2001:db8:1:2:8000::', '2001:db8:1:2:ffff:ffff:ffff:ffff'];
    expect(new Set(inside.map(rateLimitKeyOfIp))).toEqual(new Set(['2001:db8:1:2::/64']));
    expect(rateLimitKeyOfIp('2001:db8:1:3::1')).not.toBe(rateLimitKeyOfIp('2001:db8:1:2::1'));
  });
});

describe('the forgot-password per-IP limit counts a /64 as one client', () => {
  let ctx: TestContext;
  const forgot = (remoteAddress: string, n: number): Promise<{ statusCode: number }> =>
    ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: `someone.${n}@example.com` }, remoteAddress });
  const queued = async (): Promise<number> => Number((await ctx.db.selectFrom('mail_outbox').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

  it('two addresses in one /64 share the counter; an address in another /64 does not', async () => {
    // One request per IP per minute; the per-address limit off, so only the per-IP one counts.
    ctx = await makeTestApp({ env: { LIMIT_FORGOT_PER_IP_PER_MINUTE: '1', LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0' } });
    try {
      expect((await forgot('2001:db8:1:2::1', 1)).statusCode).toBe(202);
      expect(await queued()).toBe(1);
      // Another address of the same /64: throttled (still 202, nothing queued).
      expect((await forgot('2001:db8:1:2:aaaa:bbbb:cccc:dddd', 2)).statusCode).toBe(202);
      expect(await queued()).toBe(1);
      // A different /64: its own counter.
      expect((await forgot('2001:db8:1:3::1', 3)).statusCode).toBe(202);
      expect(await queued()).toBe(2);
      // An IPv4 client and its IPv4-mapped spelling are one client.
      expect((await forgot('198.51.100.9', 4)).statusCode).toBe(202);
      expect((await forgot('::ffff:198.51.100.9', 5)).statusCode).toBe(202);
      expect(await queued()).toBe(3);
    } finally {
      await ctx.close();
    }
  });

  it('two addresses in one /64 share the verify/reset counter and get 429', async () => {
    ctx = await makeTestApp({ env: { LIMIT_RESET_PER_IP_PER_MINUTE: '1' } });
    try {
      const verify = (remoteAddress: string): Promise<{ statusCode: number }> =>
        ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password/verify', payload: { token: 'A'.repeat(43) }, remoteAddress });
      expect((await verify('2001:db8:9:9::1')).statusCode).toBe(400);
      expect((await verify('2001:db8:9:9::2')).statusCode).toBe(429);
      expect((await verify('2001:db8:9:a::1')).statusCode).toBe(400);
    } finally {
      await ctx.close();
    }
  });
});

describe('X-Forwarded-For entries with a port (Azure Application Gateway, IIS ARR)', () => {
  it.each([
    ['203.0.113.5:51234', '203.0.113.5'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['198.51.100.1:1, 10.0.0.4:8080', '198.51.100.1, 10.0.0.4'],
    ['unknown', 'unknown'],
  ])('%s → %s', (header, expected) => {
    expect(forwardedForWithoutPorts(header)).toBe(expected);
  });

  it('one client behind a proxy that adds ports is one client to the per-IP limit, and is logged without the port', async () => {
    const ctx = await makeTestApp({ env: { TRUST_PROXY: '1', LIMIT_FORGOT_PER_IP_PER_MINUTE: '1', LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0' } });
    try {
      const forgot = (forwardedFor: string, n: number) =>
        ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: `someone.${n}@example.com` }, remoteAddress: '10.0.0.4', headers: { 'x-forwarded-for': forwardedFor } });
      await forgot('203.0.113.5:51234', 1);
      // The same client on its next connection: another source port, the same counter.
      await forgot('203.0.113.5:51299', 2);
      const rows = await ctx.db.selectFrom('mail_outbox').select('ip').execute();
      expect(rows.map((r) => r.ip)).toEqual(['203.0.113.5']);
    } finally {
      await ctx.close();
    }
  });
});
