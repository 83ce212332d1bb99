import fs from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { assertBuilt, startServer, tempDataDir, type RunningServer } from './helpers/cli.js';

// The built server: the thread that answers requests keeps its priority; the delivery thread and
// the hashing threads, whose work can wait a moment, run lower (src/thread-priority.ts).

let server: RunningServer | undefined;
afterAll(async () => server?.stop());

/** The nice value of every thread (task) of a process. */
function niceOfThreads(pid: number): number[] {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

it('runs the delivery thread at nice 5 and the hashing threads at nice 10, the main thread at 0', async () => {
  assertBuilt();
  server = await startServer({ DATA_DIR: tempDataDir(), LOG_LEVEL: 'warn', MAIL_DEV_INBOX: 'false' });
  const pid = server.child.pid!;
  const before = niceOfThreads(pid);
  expect(before[0]).toBe(0);
  expect(before.filter((n) => n === 5)).toHaveLength(1);
  // Any sign-in hashes (an unknown login verifies against a dummy hash); so did the first start (the admin's password).
  const res = await fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'nobody', password: 'not the password at all' }) });
  expect(res.status).toBe(401);
  const after = niceOfThreads(pid);
  expect(after[0]).toBe(0);
  expect(after.filter((n) => n === 10).length).toBeGreaterThanOrEqual(1);
  expect(after.filter((n) => n !== 0 && n !== 5 && n !== 10)).toEqual([]);
});
