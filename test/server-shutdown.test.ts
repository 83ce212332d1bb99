import fs from 'node:fs';
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, startServer, tempDataDir, type RunningServer } from './helpers/cli.js';

// The shutdown bound of src/server.ts (SHUTDOWN_BOUND_MS).
const BOUND_MS = 10_000;

interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

/**
 * A sign-in sent over a raw socket in two halves: the headers with `Expect: 100-continue`, then,
 * when the test says so, the body. The server's "100 Continue" proves the request has reached its
 * handler, so a signal sent after it lands while the request is in flight, with no race.
 */
function slowSignIn(port: number, credentials: { login: string; password: string }) {
  const body = JSON.stringify(credentials);
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  let received = '';
  let settled = false;
  let onContinue!: () => void;
  const continued = new Promise<void>((resolve) => (onContinue = resolve));
  const response = new Promise<RawResponse>((resolve, reject) => {
    const tryParse = (): void => {
      const final = received.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const headerEnd = final.indexOf('\r\n\r\n');
      if (headerEnd < 0 || final.startsWith('HTTP/1.1 100')) return;
      const headers = final.slice(0, headerEnd);
      const length = Number(/content-length: (\d+)/i.exec(headers)?.[1] ?? NaN);
      const rest = final.slice(headerEnd + 4);
      if (Buffer.byteLength(rest) < length) return;
      settled = true;
      resolve({ status: Number(headers.split(' ')[1]), headers, body: rest });
    };
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) onContinue();
      tryParse();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      if (!settled) reject(new Error(`connection closed before a full answer: ${JSON.stringify(received)}`));
    });
  });
  socket.write(
    [
      'POST /api/auth/login HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Expect: 100-continue',
      '',
      '',
    ].join('\r\n'),
  );
  return {
    continued,
    response,
    isSettled: () => settled,
    sendBody: () => socket.write(body),
    destroy: () => socket.destroy(),
  };
}

/** Whether a new TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function waitUntilRefused(port: number, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await refused(port))) {
    if (Date.now() > deadline) throw new Error(`port ${port} still accepts connections after ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function exited(server: RunningServer): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve({ code: server.child.exitCode, signal: null });
    server.child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

beforeAll(() => assertBuilt());

describe('the built server shuts down gracefully, within a bound', () => {
  let dataDir: string;
  let server: RunningServer | undefined;
  afterEach(async () => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    server = undefined;
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(): Promise<{ port: number; password: string }> {
    dataDir = tempDataDir();
    server = await startServer({ DATA_DIR: dataDir });
    const password = /Password:\s+(\S+)/.exec(server.stdout())![1]!;
    return { port: Number(new URL(server.url).port), password };
  }

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s: a sign-in in flight gets its normal answer, new connections are refused, and the process exits 0 within the bound',
    async (signal) => {
      const { port, password } = await start();
      const signIn = slowSignIn(port, { login: 'admin', password });
      await signIn.continued;

      const signalledAt = Date.now();
      const exit = exited(server!);
      server!.child.kill(signal);
      await waitUntilRefused(port, 2_000);
      const refusedAfterMs = Date.now() - signalledAt;
      // Still waiting for its body: the server is holding the request open, not cutting it.
      expect(signIn.isSettled()).toBe(false);

      signIn.sendBody();
      const answer = await signIn.response;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).user).toMatchObject({ username: 'admin', mustChangePassword: true });
      expect(answer.headers).toMatch(/^set-cookie: /im);

      expect(await exit).toEqual({ code: 0, signal: null });
      const exitedAfterMs = Date.now() - signalledAt;
      console.log(`${signal}: new connections refused after ${refusedAfterMs} ms, exit 0 after ${exitedAfterMs} ms`);
      expect(exitedAfterMs).toBeLessThan(BOUND_MS);
      expect(server!.stderr()).toBe('');
    },
    30_000,
  );

  it('exits 1 with one line on stderr when a request is still in flight at the bound', async () => {
    const { port, password } = await start();
    // A client that never sends its body holds its request open for good.
    const stuck = slowSignIn(port, { login: 'admin', password });
    stuck.response.catch(() => undefined);
    await stuck.continued;

    const signalledAt = Date.now();
    const exit = exited(server!);
    server!.child.kill('SIGTERM');
    await waitUntilRefused(port, 2_000);

    expect(await exit).toEqual({ code: 1, signal: null });
    const exitedAfterMs = Date.now() - signalledAt;
    console.log(`stuck request: exit 1 after ${exitedAfterMs} ms`);
    expect(exitedAfterMs).toBeGreaterThanOrEqual(BOUND_MS - 100);
    expect(exitedAfterMs).toBeLessThan(BOUND_MS + 3_000);
    expect(server!.stderr()).toBe('gatehouse: shutdown took longer than 10 s; exiting with work cut short\n');
    stuck.destroy();
  }, 30_000);
});
