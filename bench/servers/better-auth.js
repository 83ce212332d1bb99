// Scenario 5: Better Auth doing the same two jobs, on node:http, with SQLite through
// better-sqlite3 (the same driver and pragmas as Gatehouse) and a sendResetPassword that does
// nothing. Environment: BA_DATA_DIR, BA_PASSWORD, BA_USERS, BA_HASH (scrypt | argon2id).
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';

const dataDir = process.env.BA_DATA_DIR;
const password = process.env.BA_PASSWORD;
const userCount = Number(process.env.BA_USERS ?? '20');
const hashKind = process.env.BA_HASH ?? 'scrypt';
if (!dataDir || !password) throw new Error('BA_DATA_DIR and BA_PASSWORD are required');

// Gatehouse's parameters (src/accounts/passwords.ts), for the like-for-like variant.
const ARGON2ID = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

const sqlite = new Database(path.join(dataDir, 'better-auth.sqlite'));
sqlite.pragma('journal_mode = WAL');
sqlite.pragma('busy_timeout = 5000');
sqlite.pragma('synchronous = NORMAL');

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(undefined)));
const port = /** @type {import('node:net').AddressInfo} */ (server.address()).port;
const baseURL = `http://127.0.0.1:${port}`;

/** @type {import('better-auth').BetterAuthOptions} */
const options = {
  baseURL,
  secret: randomBytes(32).toString('hex'),
  database: sqlite,
  trustedOrigins: [baseURL],
  telemetry: { enabled: false },
  // The bench turns Gatehouse's limits off too.
  rateLimit: { enabled: false },
  // Better Auth logs a warning for every unknown address; Gatehouse logs nothing there at warn.
  logger: { level: 'error' },
  emailAndPassword: {
    enabled: true,
    // Does nothing: the reset email is not sent (Gatehouse's worker does send it).
    sendResetPassword: async () => {},
    ...(hashKind === 'argon2id'
      ? {
          password: {
            hash: (plain) => argon2Hash(plain.normalize('NFKC'), ARGON2ID),
            verify: ({ hash, password: plain }) => argon2Verify(hash, plain.normalize('NFKC')),
          },
        }
      : {}),
  },
};

const auth = betterAuth(options);
const { runMigrations } = await getMigrations(options);
await runMigrations();

// Users are made through Better Auth's own sign-up, two at a time (each one hashes).
const emails = Array.from({ length: userCount }, (_, i) => `bench-user-${String(i).padStart(4, '0')}@example.com`);
for (let i = 0; i < emails.length; i += 2) {
  await Promise.all(
    emails.slice(i, i + 2).map((email) => auth.api.signUpEmail({ body: { email, password, name: `Bench user ${email}` } })),
  );
}

server.on('request', toNodeHandler(auth));
process.send?.({ ready: true, port });

process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
