/**
 * test/support/network-guard.mjs: every process and thread of the suite refuses to resolve a
 * name or connect outside loopback. The refusals provoked here are marked expected
 * (GATEHOUSE_NETWORK_GUARD_EXPECT=1 while they happen, in this fork and in the env of the child
 * and thread), so they are logged as EXPECTED and global-setup's teardown does not fail the run.
 *
 * Nothing here tries a non-loopback address unless the guard is installed in the process that
 * would make the attempt, and a socket that started connecting anyway is destroyed before its
 * connect runs (Node connects to an IP literal on the next tick), so a broken guard fails these
 * tests without sending anything.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { networkGuardViolations, NETWORK_GUARD_LOG_VARIABLE } from './global-setup.js';

const GUARD = Symbol.for('gatehouse.networkGuard');
const EXPECT_VARIABLE = 'GATEHOUSE_NETWORK_GUARD_EXPECT';
const BLACK_HOLE = '10.255.255.1';
const SUFFIX = 'refused (tests talk to 127.0.0.1 only)';

function guardInstalled(): boolean {
  return (globalThis as Record<symbol, unknown>)[GUARD] !== undefined;
}

function requireGuard(): void {
  if (!guardInstalled()) throw new Error('network-guard is not loaded in this fork (vitest.config.ts execArgv): not trying any connection');
}

function logLines(pid: number = process.pid): string[] {
  const file = process.env[NETWORK_GUARD_LOG_VARIABLE];
  if (!file) throw new Error(`${NETWORK_GUARD_LOG_VARIABLE} is not set (test/global-setup.ts sets it)`);
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.includes(` pid=${pid} `));
}

/** The error the socket emits; rejects if it connects or nothing happens within a second. */
function errorOf(socket: net.Socket): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no error within 1 s'));
    }, 1000);
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve(err);
    });
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error('connected'));
    });
  });
}

/** net.connect, refused before a handle exists: a socket that did start is destroyed before its connect runs. */
async function refusedConnect(port: number, host: string): Promise<NodeJS.ErrnoException> {
  requireGuard();
  const socket = net.connect(port, host);
  const started = socket.connecting || (socket as unknown as { _handle: unknown })._handle != null;
  if (started) socket.destroy();
  expect(started, 'the socket started connecting').toBe(false);
  return errorOf(socket);
}

async function loopbackServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer((s) => s.end('hello'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function readAll(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    socket.on('data', (d) => (data += String(d)));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

describe('network guard: refused in this fork (expected violations)', () => {
  let before: number;
  beforeAll(() => requireGuard());
  beforeEach(() => {
    before = logLines().length;
    process.env[EXPECT_VARIABLE] = '1';
  });
  afterEach(() => {
    delete process.env[EXPECT_VARIABLE];
  });

  it('net.connect to 10.255.255.1:9 fails at once, with no socket opened, and is logged', async () => {
    const err = await refusedConnect(9, BLACK_HOLE);
    expect(err.message).toBe(`network-guard: connection to ${BLACK_HOLE}:9 ${SUFFIX}`);
    expect(err.code).toBe('ENETUNREACH');
    const added = logLines().slice(before);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(new RegExp(` tid=0 EXPECTED connection to ${BLACK_HOLE.replace(/\./g, '\\.')}:9 at .*network-guard\\.test\\.ts`));
  });

  it('net.connect to the instance-metadata address 169.254.169.254:80 fails the same way', async () => {
    const err = await refusedConnect(80, '169.254.169.254');
    expect(err.message).toBe(`network-guard: connection to 169.254.169.254:80 ${SUFFIX}`);
  });

  it('fetch("https://login.microsoftonline.com/") rejects with the guard\'s message (no DNS query, no connection)', async () => {
    requireGuard();
    const err = await fetch('https://login.microsoftonline.com/').then(
      () => undefined,
      (e: unknown) => e as Error & { cause?: Error },
    );
    expect(err?.cause?.message).toBe(`network-guard: connection to login.microsoftonline.com:443 ${SUFFIX}`);
    expect(logLines().slice(before).join('\n')).toContain('EXPECTED connection to login.microsoftonline.com:443');
  });

  it('dns.promises.lookup("graph.microsoft.com") and dns.lookup reject with ENOTFOUND and are logged', async () => {
    requireGuard();
    await expect(dns.promises.lookup('graph.microsoft.com')).rejects.toMatchObject({ code: 'ENOTFOUND', message: `network-guard: DNS lookup of graph.microsoft.com ${SUFFIX}` });
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => dns.lookup('smtp.office365.com', { all: true }, (e) => resolve(e)));
    expect(err).toMatchObject({ code: 'ENOTFOUND', message: `network-guard: DNS lookup of smtp.office365.com ${SUFFIX}` });
    expect(logLines().slice(before)).toHaveLength(2);
  });

  it('dns.Resolver (what nodemailer resolves with) never queries: resolve4 of an outside name is refused', async () => {
    requireGuard();
    const resolver = new dns.Resolver();
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => resolver.resolve4('smtp.gmail.com', (e) => resolve(e)));
    expect(err).toMatchObject({ code: 'ENOTFOUND', message: `network-guard: DNS query for smtp.gmail.com ${SUFFIX}` });
    await expect(new dns.promises.Resolver().resolve6('x.vault.azure.net')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('a connect whose own lookup (a test DNS seam) answers a non-loopback address is refused', async () => {
    requireGuard();
    const socket = net.connect({ host: 'relay.example.test', port: 25, lookup: (_h, _o, cb) => cb(null, [{ address: BLACK_HOLE, family: 4 }]) } as net.NetConnectOpts);
    const err = await errorOf(socket);
    expect(err.message).toBe(`network-guard: connection to relay.example.test:25 (${BLACK_HOLE}) ${SUFFIX}`);
  });

  it('a UDP send to a non-loopback address fails', async () => {
    requireGuard();
    const socket = dgram.createSocket('udp4');
    try {
      const err = await new Promise<Error | null>((resolve) => socket.send('x', 53, BLACK_HOLE, (e) => resolve(e)));
      expect(err?.message).toBe(`network-guard: UDP to ${BLACK_HOLE}:53 ${SUFFIX}`);
    } finally {
      socket.close();
    }
  });
});

describe('network guard: allowed', () => {
  let server: Awaited<ReturnType<typeof loopbackServer>>;
  let before: number;
  beforeAll(async () => {
    requireGuard();
    server = await loopbackServer();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    before = logLines().length;
  });
  afterEach(() => {
    // nothing allowed may leave a line, not even an expected one
    expect(logLines().slice(before)).toEqual([]);
  });

  it('connects to 127.0.0.1 and to localhost', async () => {
    expect(await readAll(net.connect(server.port, '127.0.0.1'))).toBe('hello');
    expect(await readAll(net.connect(server.port, 'localhost'))).toBe('hello');
    expect(await readAll(net.connect({ port: server.port }))).toBe('hello');
  });

  it('a connect with a test DNS seam answering 127.0.0.1 may use any name', async () => {
    const socket = net.connect({ host: 'smtp.example.test', port: server.port, lookup: (_h, _o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]) } as net.NetConnectOpts);
    expect(await readAll(socket)).toBe('hello');
  });

  it('resolves localhost and *.localhost to loopback', async () => {
    expect(await dns.promises.lookup('localhost', { family: 4 })).toEqual({ address: '127.0.0.1', family: 4 });
    expect(await dns.promises.lookup('localhost', { family: 6 })).toEqual({ address: '::1', family: 6 });
    expect(await dns.promises.lookup('gatehouse.localhost', { family: 4 })).toEqual({ address: '127.0.0.1', family: 4 });
  });

  it('lookup("smtp.example.invalid") and other reserved test names fail with ENOTFOUND, quietly', async () => {
    for (const name of ['smtp.example.invalid', 'smtp.nowhere.example', 'relay.example.test', 'mail.example.com', 'example.org']) {
      await expect(dns.promises.lookup(name)).rejects.toMatchObject({ code: 'ENOTFOUND', message: `getaddrinfo ENOTFOUND ${name}` });
    }
    const err = await errorOf(net.connect(587, 'smtp.example.invalid'));
    expect(err).toMatchObject({ code: 'ENOTFOUND', message: 'getaddrinfo ENOTFOUND smtp.example.invalid' });
    await expect(dns.promises.resolve4('smtp.example.invalid')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });
});

/** Run in a worker thread and in a child process: reports whether the guard is there and what a connect to the black hole did. */
const PROBE = `
  const net = require('node:net');
  const report = (result) => typeof postMessageTo === 'function' ? postMessageTo(result) : console.log(JSON.stringify(result));
  const guard = globalThis[Symbol.for('gatehouse.networkGuard')] !== undefined;
  if (!guard) report({ guard });
  else {
    const socket = net.connect(9, '${BLACK_HOLE}');
    const started = socket.connecting || socket._handle != null;
    if (started) socket.destroy();
    const timer = setTimeout(() => report({ guard, started, error: 'no error within 1 s' }), 1000);
    socket.on('error', (err) => { clearTimeout(timer); report({ guard, started, error: err.message }); });
  }
`;
const WORKER_PROBE = `const postMessageTo = (r) => require('node:worker_threads').parentPort.postMessage(r);\n${PROBE}`;
interface ProbeResult {
  guard: boolean;
  started?: boolean;
  error?: string;
}
const REFUSED: ProbeResult = { guard: true, started: false, error: `network-guard: connection to ${BLACK_HOLE}:9 ${SUFFIX}` };

function runWorker(code: string, env: NodeJS.ProcessEnv): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, env });
    worker.once('message', (m: ProbeResult) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

describe('network guard: in worker threads and child processes', () => {
  beforeAll(() => requireGuard());

  it('a worker thread has the guard (and inherits nothing else it needs from its env)', async () => {
    const before = logLines().length;
    expect(await runWorker(WORKER_PROBE, { ...process.env, [EXPECT_VARIABLE]: '1' })).toEqual(REFUSED);
    // a worker given an env without NODE_OPTIONS or the log file is guarded and logs all the same
    expect(await runWorker(WORKER_PROBE, { PATH: process.env.PATH, [EXPECT_VARIABLE]: '1' })).toEqual(REFUSED);
    const added = logLines().slice(before);
    expect(added).toHaveLength(2);
    for (const line of added) expect(line).toMatch(/ tid=[1-9]\d* EXPECTED connection to 10\.255\.255\.1:9 /);
  });

  it('a child `node -e` spawned with a clean environment (as test/helpers/cli.ts does) has the guard, and so does its worker thread', async () => {
    const script = `${PROBE}
      const { Worker } = require('node:worker_threads');
      const worker = new Worker(${JSON.stringify(WORKER_PROBE)}, { eval: true });
      worker.once('message', (m) => { console.log(JSON.stringify(m)); worker.terminate(); });
    `;
    const child = spawn(process.execPath, ['-e', script], { env: { PATH: process.env.PATH, [EXPECT_VARIABLE]: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += String(d)));
    child.stderr.on('data', (d) => (stderr += String(d)));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const results = stdout.trim().split('\n').map((line) => JSON.parse(line) as ProbeResult);
    expect(results).toEqual([REFUSED, REFUSED]);
    const lines = logLines(child.pid!);
    expect(lines).toHaveLength(2);
    expect(lines.filter((l) => / tid=0 EXPECTED /.test(l))).toHaveLength(1);
    expect(networkGuardViolations(lines.join('\n'))).toEqual([]);
  });
});

describe('global-setup teardown', () => {
  it('counts every logged line as a violation except the EXPECTED ones', () => {
    const log = [
      '2030-01-01T00:00:00.000Z pid=1 tid=0 EXPECTED connection to 10.255.255.1:9 at x.ts:1:1',
      '2030-01-01T00:00:00.000Z pid=2 tid=0 VIOLATION DNS lookup of smtp.office365.com at y.ts:2:2',
      '',
    ].join('\n');
    expect(networkGuardViolations(log)).toEqual(['2030-01-01T00:00:00.000Z pid=2 tid=0 VIOLATION DNS lookup of smtp.office365.com at y.ts:2:2']);
    expect(networkGuardViolations('')).toEqual([]);
  });
});
