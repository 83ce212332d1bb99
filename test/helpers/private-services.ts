import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { freePort } from './cli.js';

// Services a fault test may stop and start without touching the ones other test files share
// (PostgreSQL on 5432, Redis on 6379): a PostgreSQL cluster of its own in a temp dir, a
// redis-server child process, and a plain SMTP server whose every reply the test decides.

const run = promisify(execFile);

/** What a private service needs that this machine may lack; undefined when nothing is missing. */
export function missingForPrivatePostgres(): string | undefined {
  if (postgresBin() === undefined) return 'initdb and pg_ctl (/usr/lib/postgresql/<version>/bin)';
  if (runsAsRoot() && (spawnSync('id', ['-u', 'postgres']).status !== 0 || spawnSync('runuser', ['--help']).error !== undefined)) {
    return 'a "postgres" user and runuser (tests run as root; initdb refuses root)';
  }
  return undefined;
}

export function missingForPrivateRedis(): string | undefined {
  return spawnSync('redis-server', ['--version']).error === undefined ? undefined : 'redis-server on PATH';
}

/**
 * Whether a test that needs `missing` may run: true when nothing is missing; with CI=true a
 * missing binary fails the suite; elsewhere the suite is skipped after one loud line.
 */
export function privateServiceOrSkip(what: string, missing: string | undefined): boolean {
  if (missing === undefined) return true;
  if (process.env.CI === 'true') throw new Error(`${what} needs ${missing} (CI=true)`);
  console.warn(`\n!!!!!!!! SKIPPED ${what}: install ${missing} !!!!!!!!\n`);
  return false;
}

function runsAsRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The newest PostgreSQL's bin directory under /usr/lib/postgresql. */
function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const bin = path.join(root, v, 'bin');
    if (fs.existsSync(path.join(bin, 'initdb')) && fs.existsSync(path.join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

export interface PrivatePostgres {
  port: number;
  /** postgres:// URL of the cluster's `postgres` database (trust auth, user postgres) */
  url: string;
  /** pg_ctl stop -m fast: sessions are ended, the port closes */
  stop(): Promise<void>;
  /** pg_ctl start, on the same port and data; resolves once it accepts connections */
  start(): Promise<void>;
  /** stops it at once and deletes its files */
  destroy(): Promise<void>;
}

/**
 * A PostgreSQL cluster of its own on 127.0.0.1 and a free port, its socket in its temp dir: a
 * test may stop and restart it. Built for speed, never for durability (no fsync).
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const bin = postgresBin();
  if (bin === undefined) throw new Error(`a private PostgreSQL needs ${missingForPrivatePostgres()}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-private-pg-'));
  const data = path.join(dir, 'data');
  // initdb and the server refuse to run as root.
  const asOwner = (cmd: string, args: string[]): Promise<unknown> =>
    runsAsRoot() ? run('runuser', ['-u', 'postgres', '--', path.join(bin, cmd), ...args], { cwd: dir }) : run(path.join(bin, cmd), args, { cwd: dir });
  if (runsAsRoot()) {
    const uid = Number(spawnSync('id', ['-u', 'postgres']).stdout.toString());
    const gid = Number(spawnSync('id', ['-g', 'postgres']).stdout.toString());
    fs.chownSync(dir, uid, gid);
  }
  const port = await freePort();
  await asOwner('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C', '--no-instructions']);
  fs.appendFileSync(
    path.join(data, 'postgresql.conf'),
    [
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${dir}'`,
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      'shared_buffers = 16MB',
      'max_connections = 60',
      '',
    ].join('\n'),
  );
  const ctl = (args: string[]): Promise<unknown> => asOwner('pg_ctl', ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '30', ...args]);
  let running = false;
  const stopNow = (): void => {
    if (running) spawnSync(runsAsRoot() ? 'runuser' : path.join(bin, 'pg_ctl'), [...(runsAsRoot() ? ['-u', 'postgres', '--', path.join(bin, 'pg_ctl')] : []), '-D', data, '-m', 'immediate', 'stop']);
    running = false;
  };
  // A test process that dies never leaves a cluster behind.
  process.once('exit', stopNow);
  const service: PrivatePostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await ctl(['-m', 'fast', 'stop']);
      running = false;
    },
    async start() {
      await ctl(['start']);
      running = true;
    },
    async destroy() {
      process.removeListener('exit', stopNow);
      if (running) await ctl(['-m', 'immediate', 'stop']).catch(() => undefined);
      running = false;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await service.start();
  } catch (err) {
    await service.destroy();
    throw new Error(`the private PostgreSQL did not start: ${(err as Error).message}\n${readIfThere(path.join(dir, 'server.log'))}`);
  }
  return service;
}

function readIfThere(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export interface PrivateRedis {
  port: number;
  url: string;
  /** SIGTERM, and waits for the process to exit: every client's connection is closed */
  stop(): Promise<void>;
  /** a new redis-server on the same port (empty: nothing is saved); resolves once it answers PING */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

/** A redis-server child process on 127.0.0.1 and a free port, keeping nothing on disk. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-private-redis-'));
  let child: ChildProcess | undefined;
  const killNow = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killNow);
  const service: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      child = c;
      let output = '';
      c.stdout!.on('data', (d) => (output += String(d)));
      c.stderr!.on('data', (d) => (output += String(d)));
      const deadline = Date.now() + 10_000;
      while (!(await answersPing(port))) {
        if (c.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server did not start on ${port}: ${output}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (c === undefined || c.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    },
    async destroy() {
      process.removeListener('exit', killNow);
      await service.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  await service.start();
  return service;
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += String(d);
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/** A message that reached DATA's end. */
export interface ReceivedMessage {
  /** the envelope's first recipient, lower-cased */
  to: string;
  text: string;
  /** the SMTP session (one client connection) it came on */
  sessionId: string;
  /** when DATA's end arrived (Date.now()) */
  receivedAt: number;
}

export interface AcceptedMessage extends ReceivedMessage {
  /** when the server replied 250 to DATA (Date.now()): from then on the message is the server's */
  acceptedAt: number;
}

export interface ScriptedSmtpServer {
  port: number;
  /** every message the server took: its 250 went to a client still connected, in order */
  accepted: AcceptedMessage[];
  /** messages whose client was gone when the server would have answered: never delivered */
  lost: ReceivedMessage[];
  /** whether a session's client has disconnected */
  isClosed(sessionId: string): boolean;
  close(): Promise<void>;
}

export interface SmtpScript {
  /** the reply to RCPT TO: undefined accepts; else refused with this code and text (451 transient, 550 permanent) */
  rcpt?(address: string, session: SMTPServerSession): { code: number; message: string } | undefined;
  /** runs once DATA has arrived and before the reply: a test holds the reply by returning a promise */
  beforeDataReply?(message: ReceivedMessage): Promise<void> | void;
}

/**
 * A plain SMTP server on 127.0.0.1 (no TLS, no AUTH: Gatehouse's settings with SSL off and no
 * password secret), whose replies the test scripts; it records when each message was accepted.
 */
export async function startScriptedSmtpServer(script: SmtpScript = {}): Promise<ScriptedSmtpServer> {
  const accepted: AcceptedMessage[] = [];
  const lost: ReceivedMessage[] = [];
  const closed = new Set<string>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    logger: false,
    closeTimeout: 50,
    onClose(session) {
      closed.add(session.id);
    },
    onRcptTo(address, session, callback) {
      const refusal = script.rcpt?.(address.address, session);
      if (refusal === undefined) return callback();
      return callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then(async (parsed) => {
          const message: ReceivedMessage = {
            to: String(session.envelope.rcptTo[0]?.address ?? '').toLowerCase(),
            text: String(parsed.text ?? ''),
            sessionId: session.id,
            receivedAt: Date.now(),
          };
          await script.beforeDataReply?.(message);
          // A client gone before the answer never learns the message was taken: a real server
          // would not deliver it either (RFC 5321 §4.1.1.4: the 250 is the commitment).
          if (closed.has(session.id)) lost.push(message);
          else accepted.push({ ...message, acceptedAt: Date.now() });
          callback();
        })
        .catch(callback);
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.server.address() as net.AddressInfo).port,
    accepted,
    lost,
    isClosed: (id) => closed.has(id),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
