import fs from 'node:fs';
import os from 'node:os';

/**
 * Lowers the calling thread's own scheduling priority (its nice value), not the process's: on
 * Linux every thread is a task with an id of its own, and setpriority() on that id reaches that
 * thread only. Work that can wait (hashing, sending mail) then yields the cores to the thread
 * that answers requests whenever both want them. Elsewhere nothing changes (false).
 */
export function lowerThisThreadsPriority(nice: number): boolean {
  try {
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid)) return false;
    os.setPriority(tid, Math.max(os.getPriority(tid), nice));
    return true;
  } catch {
    return false;
  }
}
