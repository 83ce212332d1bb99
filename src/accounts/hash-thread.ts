import { parentPort } from 'node:worker_threads';
import { hashSync, verifySync } from '@node-rs/argon2';
import { lowerThisThreadsPriority } from '../thread-priority.js';
import { ARGON2ID, HASH_THREAD_NICE, type HashJob, type HashResult } from './passwords.js';

// An entry point: one hashing thread of createArgon2Hasher's pool. One hash at a time, at a lower
// priority than the thread that answers requests. Passwords arrive already normalised.

lowerThisThreadsPriority(HASH_THREAD_NICE);

parentPort!.on('message', (job: HashJob) => {
  let result: HashResult;
  try {
    result = { id: job.id, value: job.kind === 'hash' ? hashSync(job.password, ARGON2ID) : verifySync(job.hash, job.password) };
  } catch (err) {
    // verify: a malformed stored hash is a wrong password, as in-process.
    result = job.kind === 'verify' ? { id: job.id, value: false } : { id: job.id, error: (err as Error).message };
  }
  parentPort!.postMessage(result);
});
