import { afterEach, expect, it } from 'vitest';
import { AUTH_FAILURE_ATTEMPTS } from '../../src/mail/outbox.js';
import { MailSendError } from '../../src/mail/transport.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';

// A refused login (535) is permanent for one password, but a password rotated in the secret store
// reaches the delivery thread only within SECRETS_CACHE_SECONDS: the delivery is tried a few times
// (AUTH_FAILURE_ATTEMPTS), then given up with an audit entry, so a wrong password never gets the
// mailbox locked by the provider.

let ctx: TestContext;
afterEach(async () => ctx?.close());

const refused = () => new MailSendError('535 5.7.8 Username and Password not accepted', false, 'auth_failed');

async function requestReset(): Promise<void> {
  await addUser(ctx, { email: 'jane@example.com' });
  expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'jane@example.com' } })).statusCode).toBe(202);
}
const row = () => ctx.db.selectFrom('mail_outbox').select(['status', 'attempts', 'last_error']).executeTakeFirstOrThrow();
const auditTypes = async () => (await ctx.db.selectFrom('audit_events').select('type').orderBy('at').execute()).map((r) => r.type);

it('delivers once the rotated password is read: the retry after a refused login succeeds', async () => {
  ctx = await makeTestApp();
  await requestReset();
  ctx.mailer.fail = refused();
  await ctx.outbox.drain();
  expect(await row()).toMatchObject({ status: 'retrying', attempts: 1, last_error: expect.stringMatching(/^auth_failed: 535 /) });

  ctx.mailer.fail = undefined;
  ctx.clock.advanceSeconds(1); // makeTestApp's first backoff
  await ctx.outbox.drain();
  expect(await row()).toMatchObject({ status: 'sent', attempts: 2 });
  expect(ctx.mailer.sent).toHaveLength(1);
  expect(await auditTypes()).not.toContain('email_given_up');
});

it(`gives up after ${AUTH_FAILURE_ATTEMPTS} refused logins, with an email_given_up audit entry`, async () => {
  ctx = await makeTestApp();
  await requestReset();
  ctx.mailer.fail = refused();
  for (let attempt = 1; attempt <= AUTH_FAILURE_ATTEMPTS; attempt++) {
    await ctx.outbox.drain();
    expect(await row()).toMatchObject({ status: attempt < AUTH_FAILURE_ATTEMPTS ? 'retrying' : 'failed', attempts: attempt });
    ctx.clock.advanceSeconds(60); // past the backoff, well inside the link's hour
  }
  await ctx.outbox.drain();
  expect(await row()).toMatchObject({ status: 'failed', attempts: AUTH_FAILURE_ATTEMPTS });
  expect((await auditTypes()).filter((t) => t === 'email_given_up')).toHaveLength(1);
  expect(ctx.mailer.sent).toHaveLength(0);
});
