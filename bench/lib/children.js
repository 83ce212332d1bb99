// Child processes and temporary folders of one bench run, and their clean-up on every way out.
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
/** @type {Set<string>} */
const tempDirs = new Set();
/** @type {{ async: () => Promise<void>, sync: () => void }[]} other things to undo (databases) */
const cleanups = [];

/**
 * Registers something to undo once the children are stopped: `async` on every ordinary way out
 * (end, error, Ctrl-C), `sync` as the last resort when the process exits without waiting.
 */
export function onCleanup(async, sync) {
  cleanups.push({ async, sync });
}

export function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `gatehouse-bench-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Stops one child by its own pid: SIGTERM, then SIGKILL if it has not exited after graceMs. */
export function stopChild(child, graceMs = 5000) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export async function stopAll() {
  await Promise.all([...children].map((c) => stopChild(c, 3000)));
  for (const c of cleanups) await c.async().catch((err) => process.stderr.write(`bench: clean-up failed: ${err?.message ?? err}\n`));
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** Last resort on a synchronous exit: no waiting possible, so SIGKILL whatever is left. */
function killLeftovers() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  for (const c of cleanups) {
    try {
      c.sync();
    } catch {
      // last resort: nothing more to do
    }
  }
}

let installed = false;
let interruptedBy;
/** The signal that stopped the run (Ctrl-C), if one did: nothing measured after it counts. */
export const interrupted = () => interruptedBy;

export function installCleanup() {
  if (installed) return;
  installed = true;
  process.on('exit', killLeftovers);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      interruptedBy = signal;
      process.stderr.write(`\nbench: ${signal}, stopping child processes…\n`);
      stopAll().finally(() => process.exit(130));
    });
  }
}

/**
 * A Node child with an IPC channel that sends `{ ready: true, ... }` once it listens.
 * Resolves with the child and that message.
 */
export function forkReady(modulePath, { env = {}, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(
      fork(modulePath, [], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      }),
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += String(d);
      if (stderr.length > 20_000) stderr = stderr.slice(-20_000);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${path.basename(modulePath)} did not start in ${timeoutMs} ms: ${stderr.trim().slice(-2000)}`));
    }, timeoutMs);
    child.on('message', function onMessage(msg) {
      if (msg && msg.ready) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve({ child, info: msg, stderr: () => stderr });
      } else if (msg && msg.failed) {
        clearTimeout(timer);
        reject(new Error(`${path.basename(modulePath)}: ${msg.failed}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${path.basename(modulePath)} exited (${code ?? signal}) before it was ready: ${stderr.trim().slice(-2000)}`));
    });
  });
}

/** One request/response over the child's IPC channel. */
export function ask(child, message, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const id = Math.random().toString(36).slice(2);
    const timer = setTimeout(() => {
      child.off('message', onMessage);
      reject(new Error(`no answer to ${message.cmd}`));
    }, timeoutMs);
    function onMessage(msg) {
      if (msg && msg.id === id) {
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(msg);
      }
    }
    child.on('message', onMessage);
    child.send({ ...message, id });
  });
}

/**
 * Runs a command to completion; resolves with its exit code and output. Past timeoutMs it is
 * killed and the promise rejects (a one-off command that never exits must not hang the bench).
 */
export function run(command, args, { env, cwd, input = '', timeoutMs } = {}) {
  return new Promise((resolve, reject) => {
    const child = track(spawn(command, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] }));
    let stdout = '';
    let stderr = '';
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`${path.basename(command)} ${args.join(' ')} did not exit within ${timeoutMs / 1000} s; its output: ${(stdout + stderr).trim().slice(-500)}`));
          }, timeoutMs);
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}
