import { createCipheriv, createDecipheriv } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { cryptoRandom, type Random } from '../random.js';
import {
  assertValidSecretName,
  SecretStoreUnavailableError,
  sortNames,
  type SecretStore,
} from './store.js';

export const SECRETS_FILE_NAME = 'secrets.enc.json';
export const KEY_FILE_NAME = 'secrets.key';
export const SECRETS_KEY_BYTES = 32;

const FILE_FORMAT = 'gatehouse-secrets';
const FILE_VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_CHECK_PLAINTEXT = 'gatehouse-key-check';
const KEY_CHECK_AAD = Buffer.from(`${FILE_FORMAT}:v${FILE_VERSION}:key-check`);
const LOCK_RETRY_MS = 10;
const LOCK_ATTEMPTS = 500;

export interface LocalSecretStoreOptions {
  dataDir: string;
  /** 32 bytes, from SECRETS_KEY. Without it a key file is made in dataDir on the first write. */
  key?: Buffer;
  random?: Random;
}

const sealedSchema = z.object({ iv: z.string(), tag: z.string(), data: z.string() });
type Sealed = z.infer<typeof sealedSchema>;
const headerSchema = z.object({ format: z.literal(FILE_FORMAT), version: z.number() });
const fileSchema = z.object({
  format: z.literal(FILE_FORMAT),
  version: z.literal(FILE_VERSION),
  cipher: z.literal('aes-256-gcm'),
  keyCheck: sealedSchema,
  secrets: z.record(z.string(), sealedSchema),
});
type SecretsFile = z.infer<typeof fileSchema>;

/**
 * Secrets in DATA_DIR/secrets.enc.json, each value sealed with AES-256-GCM under its own IV.
 * The lower-cased name is the associated data, so entries cannot be swapped or renamed.
 * The file is read on every call because the CLI may write while the server runs; writes take
 * a lock file and replace the file by rename, so a reader sees the old or the new file, never half.
 */
export function createLocalSecretStore(options: LocalSecretStoreOptions): SecretStore {
  const { dataDir } = options;
  const random = options.random ?? cryptoRandom;
  const filePath = join(dataDir, SECRETS_FILE_NAME);
  const keyPath = join(dataDir, KEY_FILE_NAME);
  const lockPath = `${filePath}.lock`;
  if (options.key !== undefined && options.key.length !== SECRETS_KEY_BYTES) {
    throw new RangeError(`SECRETS_KEY must be ${SECRETS_KEY_BYTES} bytes`);
  }
  let key: Buffer | undefined = options.key;
  const keySource = options.key ? 'SECRETS_KEY' : `the key file ${keyPath}`;

  async function readStoreFile(): Promise<SecretsFile | undefined> {
    let text: string;
    try {
      text = await readFile(filePath, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw new SecretStoreUnavailableError(`cannot read ${filePath} (${errorCode(error)})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new SecretStoreUnavailableError(`${filePath} is not valid JSON`);
    }
    const header = headerSchema.safeParse(json);
    if (header.success && header.data.version !== FILE_VERSION) {
      throw new SecretStoreUnavailableError(
        `${filePath} has format version ${header.data.version}, this Gatehouse reads version ${FILE_VERSION}`,
      );
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success) {
      throw new SecretStoreUnavailableError(`${filePath} is not a Gatehouse secrets file`);
    }
    return parsed.data;
  }

  async function readKeyFile(): Promise<Buffer | undefined> {
    let text: string;
    try {
      text = await readFile(keyPath, 'utf8');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw new SecretStoreUnavailableError(`cannot read ${keyPath} (${errorCode(error)})`);
    }
    const encoded = text.trim();
    const decoded = Buffer.from(encoded, 'base64');
    if (decoded.length !== SECRETS_KEY_BYTES || decoded.toString('base64') !== encoded) {
      throw new SecretStoreUnavailableError(
        `${keyPath} does not hold a base64-encoded ${SECRETS_KEY_BYTES}-byte key`,
      );
    }
    return decoded;
  }

  /** Only a write may create the key: a fresh key beside an existing file would hide its secrets. */
  async function loadKey(file: SecretsFile | undefined): Promise<Buffer> {
    key ??= await readKeyFile();
    if (key === undefined && file === undefined) key = await createKeyFile();
    if (key === undefined) {
      throw new SecretStoreUnavailableError(
        `${filePath} exists but ${keyPath} is missing: set SECRETS_KEY or restore the key file`,
      );
    }
    if (file !== undefined) verifyKey(file, key);
    return key;
  }

  async function createKeyFile(): Promise<Buffer> {
    const created = random.bytes(SECRETS_KEY_BYTES);
    try {
      // 'wx': another process may have made the key a moment ago; theirs wins and we read it.
      await writeDurably(keyPath, `${created.toString('base64')}\n`);
      return created;
    } catch (error) {
      if (errorCode(error) === 'EEXIST') {
        const existing = await readKeyFile();
        if (existing) return existing;
      }
      throw new SecretStoreUnavailableError(`cannot create ${keyPath} (${errorCode(error)})`);
    }
  }

  function verifyKey(file: SecretsFile, candidate: Buffer): void {
    const check = unseal(file.keyCheck, candidate, KEY_CHECK_AAD);
    if (check !== KEY_CHECK_PLAINTEXT) {
      throw new SecretStoreUnavailableError(
        `cannot decrypt ${filePath} with ${keySource}: wrong SECRETS_KEY?`,
      );
    }
  }

  function seal(plaintext: string, secretKey: Buffer, aad: Buffer): Sealed {
    const iv = random.bytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', secretKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aad);
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return {
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      data: data.toString('base64'),
    };
  }

  /** undefined when the entry does not authenticate: tampered, swapped, or another key. */
  function unseal(sealed: Sealed, secretKey: Buffer, aad: Buffer): string | undefined {
    const iv = Buffer.from(sealed.iv, 'base64');
    const tag = Buffer.from(sealed.tag, 'base64');
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', secretKey, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad);
      decipher.setAuthTag(tag);
      return Buffer.concat([
        decipher.update(Buffer.from(sealed.data, 'base64')),
        decipher.final(),
      ]).toString('utf8');
    } catch {
      return undefined;
    }
  }

  async function writeStoreFile(file: SecretsFile): Promise<void> {
    const tempPath = join(dataDir, `.${SECRETS_FILE_NAME}.${random.bytes(8).toString('hex')}.tmp`);
    try {
      await writeDurably(tempPath, `${JSON.stringify(file, null, 2)}\n`);
      await rename(tempPath, filePath);
    } catch (error) {
      await unlink(tempPath).catch(() => undefined);
      throw new SecretStoreUnavailableError(`cannot write ${filePath} (${errorCode(error)})`);
    }
  }

  /** Serialises writers across processes (the CLI and the server) so no update is lost. */
  async function withWriteLock<T>(work: () => Promise<T>): Promise<T> {
    try {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new SecretStoreUnavailableError(`cannot create ${dataDir} (${errorCode(error)})`);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        const lock = await open(lockPath, 'wx', 0o600);
        await lock.writeFile(String(process.pid)).finally(() => lock.close());
        break;
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') {
          throw new SecretStoreUnavailableError(`cannot create ${lockPath} (${errorCode(error)})`);
        }
      }
      const owner = await lockOwner(lockPath);
      // Released between our try and our look: try again at once. Never unlink here — the lock
      // may already be the next writer's, and removing it would let two writers in.
      if (owner === 'released') continue;
      // A writer that crashed leaves its lock behind; its pid being gone makes the lock stale.
      // Two waiters may both see that and race to remove it: the worst case is one lost update,
      // never a torn file, since the file itself is only ever replaced by rename.
      if (owner === 'dead') {
        await unlink(lockPath).catch(() => undefined);
        continue;
      }
      if (attempt >= LOCK_ATTEMPTS) {
        throw new SecretStoreUnavailableError(
          `${lockPath} is held by another process; delete it if no Gatehouse process is running`,
        );
      }
      await sleep(LOCK_RETRY_MS);
    }
    try {
      return await work();
    } finally {
      await unlink(lockPath).catch(() => undefined);
    }
  }

  function findEntryName(file: SecretsFile, name: string): string | undefined {
    const wanted = name.toLowerCase();
    return Object.keys(file.secrets).find((entryName) => entryName.toLowerCase() === wanted);
  }

  return {
    kind: 'local',
    async get(name) {
      assertValidSecretName(name);
      const file = await readStoreFile();
      if (file === undefined) return undefined;
      const secretKey = await loadKey(file);
      const entryName = findEntryName(file, name);
      if (entryName === undefined) return undefined;
      const value = unseal(file.secrets[entryName]!, secretKey, aadFor(name));
      if (value === undefined) {
        throw new SecretStoreUnavailableError(
          `cannot decrypt an entry of ${filePath}: the file was modified (or wrong SECRETS_KEY?)`,
        );
      }
      return value;
    },
    async set(name, value) {
      assertValidSecretName(name);
      await withWriteLock(async () => {
        const existing = await readStoreFile();
        const secretKey = await loadKey(existing);
        const file: SecretsFile = existing ?? {
          format: FILE_FORMAT,
          version: FILE_VERSION,
          cipher: 'aes-256-gcm',
          keyCheck: seal(KEY_CHECK_PLAINTEXT, secretKey, KEY_CHECK_AAD),
          secrets: {},
        };
        // One entry per name whatever its case: names are case-insensitive, as in Key Vault.
        const previous = findEntryName(file, name);
        if (previous !== undefined) delete file.secrets[previous];
        file.secrets[name] = seal(value, secretKey, aadFor(name));
        await writeStoreFile(file);
      });
    },
    async delete(name) {
      assertValidSecretName(name);
      // Nothing to delete and nothing to create: a read-only look before taking the lock.
      if ((await readStoreFile()) === undefined) return;
      await withWriteLock(async () => {
        const file = await readStoreFile();
        if (file === undefined) return;
        await loadKey(file);
        const entryName = findEntryName(file, name);
        if (entryName === undefined) return;
        delete file.secrets[entryName];
        await writeStoreFile(file);
      });
    },
    async list() {
      const file = await readStoreFile();
      if (file === undefined) return [];
      // A wrong key fails here too, so `secrets list` never looks healthy on an unreadable store.
      await loadKey(file);
      return sortNames(Object.keys(file.secrets));
    },
  };
}

function aadFor(name: string): Buffer {
  return Buffer.from(`${FILE_FORMAT}:v${FILE_VERSION}:secret:${name.toLowerCase()}`);
}

/**
 * A new file ('wx': never overwrite), flushed to disk before the caller renames or relies on it,
 * mode 0600 because it holds a key or ciphertexts. Losing the key file to a crash loses every secret.
 */
async function writeDurably(path: string, content: string): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Who holds the lock: a live process, one that is gone (a stale lock), or nobody any more. */
async function lockOwner(lockPath: string): Promise<'alive' | 'dead' | 'released'> {
  let owner: number;
  try {
    owner = Number.parseInt(await readFile(lockPath, 'utf8'), 10);
  } catch (error) {
    return errorCode(error) === 'ENOENT' ? 'released' : 'alive';
  }
  // An empty lock file is one being written right now, not a stale one.
  if (!Number.isInteger(owner) || owner <= 0) return 'alive';
  try {
    process.kill(owner, 0);
    return 'alive';
  } catch (error) {
    return errorCode(error) === 'ESRCH' ? 'dead' : 'alive';
  }
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}
