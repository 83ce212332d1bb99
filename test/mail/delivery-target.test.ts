import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser, makeTestApp, memoryMailer, signIn, type TestContext } from '../helpers/app.js';
import { loadConfig } from '../../src/config.js';
import type { DevInbox } from '../../src/mail/dev-inbox.js';
import { chooseMailer } from '../../src/mail/index.js';
import { createOutboxWorker } from '../../src/mail/outbox.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { recoveryHandlers } from '../../src/recovery/delivery.js';
import { SECRETS, settingsFor, startSmtp, type SmtpFixture } from './fixtures.js';

// Where mail goes is explicit: GET/PUT /api/settings/delivery (dev mailbox or the mail server),
// read by the outbox for every message, and each delivery says where it went.

/** A stand-in for the embedded dev mailbox: what the routes need to know it runs. */
function fakeDevInbox(): DevInbox & { mailer: ReturnType<typeof memoryMailer> } {
  const mailer = memoryMailer();
  return { port: 0, mailer, list: () => [], find: () => undefined, close: async () => {} };
}

let smtp: SmtpFixture;
const open: TestContext[] = [];
beforeAll(async () => {
  smtp = await startSmtp({ smtp: { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } });
});
afterAll(async () => {
  await smtp.close();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function app(o: { env?: Record<string, string>; devInbox?: DevInbox } = {}): Promise<{ ctx: TestContext; admin: string }> {
  const ctx = await makeTestApp({ env: o.env ?? {}, deps: { secrets: createMemorySecretStore(SECRETS), devInbox: o.devInbox } });
  open.push(ctx);
  await addUser(ctx, { username: 'root', role: 'system-admin' });
  await addUser(ctx, { username: 'plain-user', role: 'user' });
  return { ctx, admin: await signIn(ctx, 'root') };
}

const req = (ctx: TestContext, cookie: string, method: 'GET' | 'PUT', url: string, payload?: object) =>
  ctx.app.inject({ method, url, headers: { cookie }, ...(payload === undefined ? {} : { payload }) });

/** Plain SMTP to the loopback fixture server. */
const serverSettings = () => ({ ...settingsFor(smtp, { sslEnabled: false }), currentPassword: STRONG_PASSWORD });

describe('GET/PUT /api/settings/delivery', () => {
  it('with the dev mailbox running: the dev mailbox until the first save, which switches to the server (as before) and says so; an admin switches back', async () => {
    const { ctx, admin } = await app({ devInbox: fakeDevInbox() });
    const get = async () => (await req(ctx, admin, 'GET', '/api/settings/delivery')).json();
    expect(await get()).toEqual({ target: 'dev-mailbox', chosen: null, lockedBy: null, devMailbox: true, serverConfigured: false });

    // The server needs saved settings.
    const early = await req(ctx, admin, 'PUT', '/api/settings/delivery', { target: 'server' });
    expect(early.statusCode).toBe(409);
    expect(early.json()).toMatchObject({ error: 'email_settings_not_saved' });

    expect((await req(ctx, admin, 'PUT', '/api/settings/email', serverSettings())).statusCode).toBe(200);
    expect(await get()).toEqual({ target: 'server', chosen: null, lockedBy: null, devMailbox: true, serverConfigured: true });

    const back = await req(ctx, admin, 'PUT', '/api/settings/delivery', { target: 'dev-mailbox' });
    expect(back.statusCode, back.body).toBe(200);
    expect(back.json()).toEqual({ target: 'dev-mailbox', chosen: 'dev-mailbox', lockedBy: null, devMailbox: true, serverConfigured: true });

    // An admin's choice holds: saving email settings again no longer moves mail.
    expect((await req(ctx, admin, 'PUT', '/api/settings/email', { ...serverSettings(), port: smtp.port })).statusCode).toBe(200);
    expect((await get()).target).toBe('dev-mailbox');

    const audit = await ctx.db.selectFrom('audit_events').select(['type', 'detail']).where('type', '=', 'settings_changed').orderBy('id').execute();
    expect(audit.map((e) => JSON.parse(e.detail ?? '{}'))).toContainEqual({ settings: 'delivery', changed: { target: 'dev-mailbox' } });
  });

  it('MAIL_DEV_INBOX=true fixes the dev mailbox; the API says so and refuses a switch with delivery_target_locked', async () => {
    const { ctx, admin } = await app({ env: { MAIL_DEV_INBOX: 'true' }, devInbox: fakeDevInbox() });
    expect((await req(ctx, admin, 'PUT', '/api/settings/email', serverSettings())).statusCode).toBe(200);
    expect((await req(ctx, admin, 'GET', '/api/settings/delivery')).json()).toEqual({
      target: 'dev-mailbox',
      chosen: null,
      lockedBy: 'forced-dev-mailbox',
      devMailbox: true,
      serverConfigured: true,
    });
    const res = await req(ctx, admin, 'PUT', '/api/settings/delivery', { target: 'server' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ error: 'delivery_target_locked', message: expect.stringContaining('MAIL_DEV_INBOX=true') });
  });

  it('without a dev mailbox (production, MAIL_DEV_INBOX=false): the server, fixed; the dev mailbox is refused', async () => {
    const { ctx, admin } = await app({ env: { MAIL_DEV_INBOX: 'false' } });
    expect((await req(ctx, admin, 'GET', '/api/settings/delivery')).json()).toEqual({
      target: 'server',
      chosen: null,
      lockedBy: 'no-dev-mailbox',
      devMailbox: false,
      serverConfigured: false,
    });
    const res = await req(ctx, admin, 'PUT', '/api/settings/delivery', { target: 'dev-mailbox' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toBe('delivery_target_locked');
    expect((await req(ctx, admin, 'PUT', '/api/settings/delivery', { target: 'server' })).statusCode).toBe(200);
  });

  it('is for system admins only, and takes only the two targets', async () => {
    const { ctx, admin } = await app({ devInbox: fakeDevInbox() });
    const user = await signIn(ctx, 'plain-user');
    expect((await req(ctx, user, 'GET', '/api/settings/delivery')).statusCode).toBe(403);
    expect((await req(ctx, user, 'PUT', '/api/settings/delivery', { target: 'dev-mailbox' })).statusCode).toBe(403);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/settings/delivery' })).statusCode).toBe(401);
    const bad = await req(ctx, admin, 'PUT', '/api/settings/delivery', { target: 'smtp.example.com' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toBe('invalid_request');
  });
});

describe('the outbox follows the target for every message, and records where each went', () => {
  it('a reset email goes to the server after the first save, to the dev mailbox after the switch back (no restart); GET /api/mail/deliveries says where', async () => {
    const devInbox = fakeDevInbox();
    const { ctx, admin } = await app({ devInbox });
    await addUser(ctx, { email: 'dora@example.com' });
    const chooser = chooseMailer({ db: ctx.db, secrets: ctx.deps.secrets, config: ctx.deps.config, devInboxMailer: devInbox.mailer });
    const worker = createOutboxWorker({ db: ctx.db, clock: ctx.clock, logger: ctx.deps.logger, mailer: chooser.mailer, handlers: recoveryHandlers(ctx.deps) });
    const forgot = async () => {
      expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'dora@example.com' } })).statusCode).toBe(202);
      await worker.drain();
    };
    try {
      await forgot();
      expect(devInbox.mailer.sent.map((m) => m.to)).toEqual(['dora@example.com']);

      expect((await req(ctx, admin, 'PUT', '/api/settings/email', serverSettings())).statusCode).toBe(200);
      ctx.clock.advanceSeconds(120);
      await forgot();
      expect(smtp.messages.map((m) => m.rcpt)).toEqual([['dora@example.com']]);
      expect(devInbox.mailer.sent).toHaveLength(1);

      expect((await req(ctx, admin, 'PUT', '/api/settings/delivery', { target: 'dev-mailbox' })).statusCode).toBe(200);
      ctx.clock.advanceSeconds(120);
      await forgot();
      expect(devInbox.mailer.sent).toHaveLength(2);
      expect(smtp.messages).toHaveLength(1);

      const list = (await req(ctx, admin, 'GET', '/api/mail/deliveries')).json().deliveries as { status: string; via: string | null }[];
      expect(list.map((d) => [d.status, d.via])).toEqual([
        ['sent', 'dev-mailbox'],
        ['sent', 'smtp'],
        ['sent', 'dev-mailbox'],
      ]);
    } finally {
      await worker.stop();
      chooser.close();
    }
  });

  it('a failed try keeps where it was tried: a server that refuses leaves the row retrying "via smtp"', async () => {
    const devInbox = fakeDevInbox();
    const { ctx, admin } = await app({ devInbox });
    await addUser(ctx, { email: 'dora@example.com' });
    // Bogus settings: nothing listens there.
    const bogus = { ...serverSettings(), host: '127.0.0.1', port: 1 };
    expect((await req(ctx, admin, 'PUT', '/api/settings/email', bogus)).statusCode).toBe(200);
    const chooser = chooseMailer({ db: ctx.db, secrets: ctx.deps.secrets, config: ctx.deps.config, devInboxMailer: devInbox.mailer });
    const worker = createOutboxWorker({ db: ctx.db, clock: ctx.clock, logger: ctx.deps.logger, mailer: chooser.mailer, handlers: recoveryHandlers(ctx.deps), baseBackoffMs: 1000 });
    try {
      expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'dora@example.com' } })).statusCode).toBe(202);
      await worker.drain();
      const [row] = (await req(ctx, admin, 'GET', '/api/mail/deliveries')).json().deliveries;
      expect(row).toMatchObject({ status: 'retrying', via: 'smtp' });
      expect(devInbox.mailer.sent).toEqual([]);

      // Switched back: the same row's next try lands in the dev mailbox.
      expect((await req(ctx, admin, 'PUT', '/api/settings/delivery', { target: 'dev-mailbox' })).statusCode).toBe(200);
      ctx.clock.advanceSeconds(5);
      await worker.drain();
      const [again] = (await req(ctx, admin, 'GET', '/api/mail/deliveries')).json().deliveries;
      expect(again).toMatchObject({ id: row.id, status: 'sent', via: 'dev-mailbox' });
      expect(devInbox.mailer.sent.map((m) => m.to)).toEqual(['dora@example.com']);
    } finally {
      await worker.stop();
      chooser.close();
    }
  });

  it('chooseMailer: MAIL_DEV_INBOX=true sends to the dev mailbox whatever is stored; without a dev mailbox the saved transport', async () => {
    const { ctx, admin } = await app({ devInbox: fakeDevInbox() });
    expect((await req(ctx, admin, 'PUT', '/api/settings/email', serverSettings())).statusCode).toBe(200);
    const forced = chooseMailer({ db: ctx.db, secrets: ctx.deps.secrets, config: loadConfig({ MAIL_DEV_INBOX: 'true' }), devInboxMailer: memoryMailer() });
    const none = chooseMailer({ db: ctx.db, secrets: ctx.deps.secrets, config: loadConfig({ MAIL_DEV_INBOX: 'false' }), devInboxMailer: undefined });
    try {
      expect((await forced.mailer()).via).toBe('dev-mailbox');
      expect((await none.mailer()).via).toBe('smtp');
    } finally {
      forced.close();
      none.close();
    }
  });
});

describe('PUT /api/settings/email warns when the saved settings cannot send', () => {
  it('names each secret not found and what to do; all found: no warnings', async () => {
    const { ctx, admin } = await app();
    const missing = await req(ctx, admin, 'PUT', '/api/settings/email', { ...serverSettings(), passwordSecretName: 'smtp-no-such-secret' });
    expect(missing.statusCode, missing.body).toBe(200);
    expect(missing.json().secretsResolve).toEqual({ email: true, password: false, clientSecret: null, certificate: null });
    expect(missing.json().warnings).toEqual([
      'The password secret “smtp-no-such-secret” was not found, so no email can go out: set it with `gatehouse secrets set smtp-no-such-secret` (the local secret store), then send a test email.',
    ]);
    const found = await req(ctx, admin, 'PUT', '/api/settings/email', serverSettings());
    expect(found.json().warnings).toBeUndefined();
    // GET reports the state, not a save's warnings.
    expect((await req(ctx, admin, 'GET', '/api/settings/email')).json().warnings).toBeUndefined();
  });
});

