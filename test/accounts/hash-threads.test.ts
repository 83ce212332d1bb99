import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

// The hashing threads exist only in the built server (their entry is dist/accounts/hash-thread.js):
// this file drives the built module, in a child process of its own, as `gatehouse` runs it.

const ROOT = path.resolve(import.meta.dirname, '../..');
const BUILT = path.join(ROOT, 'dist/accounts/passwords.js');

const script = `
  import fs from 'node:fs';
import os from 'node:os';
  import { createArgon2Hasher, HASH_THREAD_NICE } from ${JSON.stringify(BUILT)};
  const niceOfThreads = () => fs.readdirSync('/proc/self/task').map((t) => Number(fs.readFileSync('/proc/self/task/' + t + '/stat', 'utf8').split(') ')[1].split(' ')[16]));
  const hasher = createArgon2Hasher({ threads: true, concurrency: 2 });
  const stored = await hasher.hash('correct horse battery staple');
  const [right, wrong, malformed] = await Promise.all([
    hasher.verify(stored, 'correct horse battery staple'),
    hasher.verify(stored, 'wrong horse battery staple'),
    hasher.verify('not-a-hash', 'correct horse battery staple'),
  ]);
  // The process then ends on its own: idle hashing threads do not hold it open.
  console.log(JSON.stringify({ stored: stored.slice(0, 9), right, wrong, malformed, nice: niceOfThreads(), want: HASH_THREAD_NICE }));
`;

it('hashes and verifies on threads of its own, at a lower priority than the main thread, which it never keeps alive', async () => {
  expect(fs.existsSync(BUILT), 'npm run build first').toBe(true);
  // A file, not -e: a worker inherits the parent's execArgv, and `-e` would run the script in it.
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-hash-')), 'hash.mjs');
  fs.writeFileSync(file, script);
  const { stdout } = await promisify(execFile)(process.execPath, [file], { timeout: 20_000 });
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  const r = JSON.parse(stdout) as { stored: string; right: boolean; wrong: boolean; malformed: boolean; nice: number[]; want: number };
  expect(r).toMatchObject({ stored: '$argon2id', right: true, wrong: false, malformed: false });
  // The main thread (the first task) keeps its priority; two threads (one per concurrent hash) run lower.
  expect(r.nice[0]).toBe(0);
  expect(r.nice.filter((n) => n === r.want)).toHaveLength(2);
});
