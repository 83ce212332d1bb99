import { afterEach, beforeEach, expect, it } from 'vitest';
import { type Migration, Migrator } from 'kysely';
import { migrateToLatest, type Db } from '../../src/db/index.js';
import * as m0001 from '../../src/db/migrations/0001_initial.js';
import * as m0002 from '../../src/db/migrations/0002_recovery.js';
import * as m0003 from '../../src/db/migrations/0003_one_reset_token.js';
import * as m0004 from '../../src/db/migrations/0004_sign_in_locks.js';
import { findEmailSettings } from '../../src/mail/settings.js';
import { createConfiguredMailer } from '../../src/mail/transport.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { bothDialects, postgresSuite, type DialectDb } from '../helpers/pg.js';
import { PASSWORD, RECIPIENT, SENDER, startSmtp } from '../mail/fixtures.js';

// Email settings saved by a release before the transport choice: the five fields of DESIGN §1.
const BEFORE = { host: '127.0.0.1', port: 0, emailSecretName: 'smtp-from', passwordSecretName: 'smtp-password', sslEnabled: false };

const describeOnPostgres = await postgresSuite();

for (const [name, open, describeOn] of bothDialects(describeOnPostgres, 'gatehouse-migration-0005-')) {
  describeOn(`migration 0005 on ${name}: saved email settings keep working`, () => {
    let handle: DialectDb;
    let db: Db;
    beforeEach(async () => {
      handle = await open();
      db = handle.db;
    });
    afterEach(async () => {
      await db.destroy();
      await handle.drop();
    });

    /** The database as the previous release left it: migrated up to 0004, settings saved in the old shape. */
    async function atRelease0004(settings: object): Promise<void> {
      const upTo0004: Record<string, Migration> = { '0001_initial': m0001, '0002_recovery': m0002, '0003_one_reset_token': m0003, '0004_sign_in_locks': m0004 };
      const { error } = await new Migrator({ db, provider: { getMigrations: async () => upTo0004 } }).migrateToLatest();
      expect(error).toBeUndefined();
      await db.insertInto('settings').values({ key: 'email', value: JSON.stringify(settings), updated_at: 1, updated_by: null }).execute();
    }

    it('adds transport smtp and tlsMode auto, keeps every saved field as it was, and mail still goes out by SMTP with the password', async () => {
      const smtp = await startSmtp({ smtp: { authOptional: false, allowInsecureAuth: true, disabledCommands: ['STARTTLS'] } });
      try {
        const before = { ...BEFORE, port: smtp.port };
        await atRelease0004(before);
        expect((await migrateToLatest(db))[0]).toBe('0005_mail_transport');

        const raw = JSON.parse((await db.selectFrom('settings').select('value').where('key', '=', 'email').executeTakeFirstOrThrow()).value) as Record<string, unknown>;
        expect(raw).toMatchObject({ ...before, transport: 'smtp', tlsMode: 'auto', senderAddress: null, tenantId: null, clientId: null, entraCredential: null, clientSecretName: null, certificateName: null });
        expect(await findEmailSettings(db)).toEqual(raw);

        const secrets = createMemorySecretStore({ 'smtp-from': SENDER, 'smtp-password': PASSWORD });
        const mailer = createConfiguredMailer(() => findEmailSettings(db), secrets);
        try {
          await mailer.send({ to: RECIPIENT, subject: 'after the upgrade', text: 'still here', html: '<p>still here</p>' });
        } finally {
          mailer.close();
        }
        expect(smtp.auths).toEqual([{ username: SENDER, password: PASSWORD }]);
        expect(smtp.messages.map((m) => m.parsed.subject)).toEqual(['after the upgrade']);
      } finally {
        await smtp.close();
      }
    });

    it('keeps a relay without AUTH one, with SSL as it was', async () => {
      await atRelease0004({ ...BEFORE, port: 25, passwordSecretName: null, sslEnabled: true });
      await migrateToLatest(db);
      expect(await findEmailSettings(db)).toMatchObject({ transport: 'smtp', port: 25, passwordSecretName: null, sslEnabled: true, tlsMode: 'auto', emailSecretName: 'smtp-from' });
    });

    it('runs on a database where nothing was ever saved, and saves nothing', async () => {
      await atRelease0004({});
      await db.deleteFrom('settings').execute();
      expect((await migrateToLatest(db))[0]).toBe('0005_mail_transport');
      expect(await findEmailSettings(db)).toBeUndefined();
    });
  });
}
