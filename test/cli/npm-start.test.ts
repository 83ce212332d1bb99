import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { beforeAll, describe, it } from 'vitest';
import { assertBuilt, cleanEnv, freePort, ROOT, tempDataDir } from '../helpers/cli.js';

// `npm start` under a process manager: the manager signals the process it started, npm. npm 11
// forwards SIGINT and SIGTERM to the script's process, which is the shell npm runs the script
// line with (`sh -c "…"`); whether the server sees the signal then depends on that shell. The
// server must get it, shut down gracefully ("shutting down", exit 0), and nothing may be left
// behind: no server process reparented to init once npm has gone.

/** The server's own bound (src/server.ts SHUTDOWN_BOUND_MS), plus npm's start and exit. */
const BOUND_MS = 12_000;

interface LogLine {
  msg?: string;
  pid?: number;
  signal?: string;
}

/** Whether the process runs: it exists and is not a zombie (an exited process nobody has reaped yet). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  return stateOf(pid) !== 'Z';
}

/** "pid (comm) state ppid …", split after comm, which may hold spaces. */
function statOf(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

function stateOf(pid: number): string | undefined {
  return statOf(pid)?.[0];
}

/** The parent pid of a process, from /proc (Linux). */
function parentOf(pid: number): number | undefined {
  const ppid = statOf(pid)?.[1];
  return ppid === undefined ? undefined : Number(ppid);
}

function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '?';
  }
}

beforeAll(() => assertBuilt());

describe('npm start passes SIGTERM and SIGINT to the server', () => {
  // Side by side: each waits mostly on npm and the server. The test context's expect and
  // onTestFinished belong to each test; the global ones cannot tell concurrent tests apart.
  it.concurrent.for(['SIGTERM', 'SIGINT'] as const)(
    '%s sent to npm: the server shuts down gracefully, npm exits 0, and no process is left',
    { timeout: 30_000 },
    async (signal, { expect, onTestFinished }) => {
      const dataDir = tempDataDir();
      const leftovers: number[] = [];
      onTestFinished(() => {
        // Whatever a failing run left behind, by its id: npm, the shell, the server.
        for (const pid of leftovers) if (alive(pid)) process.kill(pid, 'SIGKILL');
        fs.rmSync(dataDir, { recursive: true, force: true });
      });
      const port = await freePort();
      const npm = spawn('npm', ['start'], {
        cwd: ROOT,
        env: cleanEnv({
          PORT: String(port),
          DATA_DIR: dataDir,
          LOG_LEVEL: 'info',
          LOG_FORMAT: 'json',
          // npm itself must not look for a newer npm (no network here) or print funding notes.
          npm_config_update_notifier: 'false',
          npm_config_fund: 'false',
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      leftovers.push(npm.pid!);
      let out = '';
      let err = '';
      npm.stdout.on('data', (d) => (out += String(d)));
      npm.stderr.on('data', (d) => (err += String(d)));
      const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => npm.once('exit', (code, sig) => resolve({ code, signal: sig })));
      const lines = (): LogLine[] =>
        out
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as LogLine);

      // Serving: /healthz answers, and the start-up line names the server's pid.
      const deadline = Date.now() + 20_000;
      let found: number | undefined;
      for (;;) {
        found = lines().find((l) => l.msg?.startsWith('Gatehouse is running'))?.pid;
        if (found !== undefined && !leftovers.includes(found)) leftovers.push(found);
        const healthy = found !== undefined && (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false));
        if (healthy) break;
        if (npm.exitCode !== null) throw new Error(`npm start exited ${npm.exitCode}: ${err}`);
        if (Date.now() > deadline) throw new Error(`npm start did not serve: ${out}${err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const serverPid = found!;
      // npm → (a shell) → node: every process between npm and the server.
      const chain: number[] = [serverPid];
      for (let p = parentOf(serverPid); p !== undefined && p !== npm.pid && chain.length < 5; p = parentOf(p)) chain.unshift(p);
      expect(parentOf(chain[0]!)).toBe(npm.pid);
      leftovers.push(...chain);
      const shape = ['npm', ...chain.map((p) => commandOf(p))].join(' → ');

      const signalledAt = Date.now();
      npm.kill(signal);
      const result = await Promise.race([exit, new Promise<'still running'>((r) => setTimeout(() => r('still running'), BOUND_MS))]);
      const exitedAfterMs = Date.now() - signalledAt;
      const shutDown = lines().some((l) => l.msg === 'shutting down' && l.signal === signal);
      const orphans = chain.filter(alive).map((p) => `${p} (${commandOf(p)}, parent ${parentOf(p)})`);
      console.log(
        `npm start, ${signal} to npm: ${shape}; npm ${typeof result === 'string' ? `still running after ${BOUND_MS} ms` : `exited ${JSON.stringify(result)} after ${exitedAfterMs} ms`}; ` +
          `server ${shutDown ? 'logged "shutting down"' : 'never saw the signal'}; ${orphans.length === 0 ? 'no process left' : `left running: ${orphans.join(', ')}`}`,
      );
      expect({ npm: result, serverShutDown: shutDown, leftRunning: orphans }).toEqual({ npm: { code: 0, signal: null }, serverShutDown: true, leftRunning: [] });
      expect(exitedAfterMs).toBeLessThan(BOUND_MS);
    },
  );
});
