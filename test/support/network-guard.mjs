/**
 * network-guard: the test suite talks to 127.0.0.1 / ::1 only.
 *
 * This machine flags traffic to any address that is not loopback, and the code under test holds
 * clients (Azure identity and Key Vault, SMTP, Redis, Postgres, fetch) that would happily go to
 * login.microsoftonline.com, graph.microsoft.com, *.vault.azure.net, smtp.office365.com or the
 * instance-metadata address 169.254.169.254 if a test forgot a fake. Loaded first into every
 * process and thread the suite starts, this module makes any such attempt fail before a packet
 * leaves, and records it so the run fails.
 *
 * Plain JavaScript with no top-level await, so Node loads it without TypeScript, with `--import`
 * and (in worker threads) with `--require`.
 *
 * HOW IT IS LOADED
 * - vitest fork workers: `execArgv: ['--import', <this file's URL>]` in vitest.config.ts.
 * - child processes started from a guarded process (child_process spawn/fork/exec/execFile and
 *   the *Sync variants, whatever `env` they pass, e.g. test/helpers/cli.ts's clean environment):
 *   the spawn is patched so the child's environment has NODE_OPTIONS with
 *   `--import "<this file's URL>"` (appended to any NODE_OPTIONS it already has) and
 *   GATEHOUSE_NETWORK_GUARD_LOG. Non-Node programs (openssl, Chromium) ignore NODE_OPTIONS;
 *   a Node process they start in turn inherits it.
 * - worker threads started from a guarded thread: Node 20 does not run `--import` preloads in
 *   worker threads (neither inherited nor in the Worker's execArgv), but a worker does read
 *   NODE_OPTIONS from its own `env` and runs `--require` preloads, and Node >= 20.19 can
 *   `require()` an ES module. So `Worker` is replaced by a subclass whose `env` (default: a copy
 *   of process.env, as Node does) gets NODE_OPTIONS with `--require "<this file's path>"`; with
 *   `env: SHARE_ENV` the preload goes into the worker's execArgv instead.
 *
 * WHAT IT ALLOWS
 * - TCP to 127.0.0.0/8, ::1, ::ffff:127.x.x.x, and to the unspecified addresses 0.0.0.0 / ::
 *   (the kernel connects those to this host); Unix sockets (options.path).
 * - Names: `localhost` and `*.localhost`. `localhost` goes to getaddrinfo (answered from
 *   /etc/hosts) except an IPv6-only lookup, answered `::1` here (with no ::1 line in /etc/hosts
 *   glibc would ask the DNS server); `*.localhost` is answered here (127.0.0.1 / ::1, RFC 6761).
 *   IP literals pass through dns.lookup (Node answers them without a query).
 * - A connect with a custom `lookup` (a test's DNS seam) may use any name; the addresses the
 *   seam returns are checked like IP literals.
 *
 * WHAT IT REFUSES
 * - Names under the reserved test TLDs `.invalid`, `.test`, `.example` and example.com / .net /
 *   .org: dns.lookup, dns.resolve* and connects fail with ENOTFOUND, quietly, exactly like a
 *   name that does not exist (tests use them to provoke dns_failed). No query is sent.
 * - Any other name (smtp.office365.com, login.microsoftonline.com, …) and any TCP connect / UDP
 *   send to an address that is not loopback is a VIOLATION: the call fails (ENOTFOUND for a
 *   name, ENETUNREACH for an address) with a message like
 *     network-guard: connection to login.microsoftonline.com:443 refused (tests talk to 127.0.0.1 only)
 *   one line is appended to the file named by GATEHOUSE_NETWORK_GUARD_LOG (set by
 *   test/global-setup.ts, whose teardown fails the run when the file holds a violation), and one
 *   loud line goes to stderr. dns.resolve* / Resolver never reach the DNS server at all.
 * - A TCP refusal never opens a socket handle: the socket is destroyed with the error on the
 *   next tick, as a real connect error would arrive, and no SYN is sent.
 *
 * EXPECTED VIOLATIONS (the guard's own tests)
 * A violation made while the process's (or thread's) environment has
 * GATEHOUSE_NETWORK_GUARD_EXPECT=1 — read at the moment of the violation — still fails the call
 * and is still logged, but as EXPECTED: nothing goes to stderr and the teardown ignores it.
 * Set it only around the calls that are meant to be refused, or only in the env of the child
 * process / worker thread that makes them.
 *
 * Log line format (one per refused attempt):
 *   <ISO time> pid=<pid> tid=<threadId> VIOLATION|EXPECTED <what> at <first caller frame>
 */
import child_process from 'node:child_process';
import dgram from 'node:dgram';
import dns from 'node:dns';
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import worker_threads from 'node:worker_threads';

const STATE = Symbol.for('gatehouse.networkGuard');
export const LOG_VARIABLE = 'GATEHOUSE_NETWORK_GUARD_LOG';
export const EXPECT_VARIABLE = 'GATEHOUSE_NETWORK_GUARD_EXPECT';
export const GUARD_URL = import.meta.url;
export const GUARD_PATH = fileURLToPath(import.meta.url);
const SUFFIX = '(tests talk to 127.0.0.1 only)';

const loopback6 = new net.BlockList();
loopback6.addAddress('::1', 'ipv6');
loopback6.addAddress('::', 'ipv6');
loopback6.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');
loopback6.addAddress('::ffff:0.0.0.0', 'ipv6');

/** 127.0.0.0/8, ::1, ::ffff:127.x.x.x, and the unspecified addresses (which mean this host). */
export function isLoopbackAddress(address) {
  if (typeof address !== 'string') return false;
  const ip = address.replace(/^\[|\]$/g, '').split('%')[0];
  const version = net.isIP(ip);
  if (version === 4) return ip.startsWith('127.') || ip === '0.0.0.0';
  if (version === 6) return loopback6.check(ip, 'ipv6');
  return false;
}

function bareName(name) {
  return String(name).trim().toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

/** localhost and *.localhost */
export function isLocalName(name) {
  const n = bareName(name);
  return n === 'localhost' || n.endsWith('.localhost');
}

/** Reserved for tests (RFC 2606 / 6761): fail with ENOTFOUND quietly. */
export function isReservedTestName(name) {
  const n = bareName(name);
  return /\.(invalid|test|example)$/.test(n) || /^(invalid|test|example)$/.test(n) || /(^|\.)example\.(com|net|org)$/.test(n);
}

if (globalThis[STATE] === undefined) install();

function install() {
  globalThis[STATE] = { url: GUARD_URL, path: GUARD_PATH, pid: process.pid, threadId: worker_threads.threadId };

  // ----- reporting -------------------------------------------------------------------------

  const appendFileSync = fs.appendFileSync;

  function callerFrame() {
    const lines = String(new Error().stack ?? '').split('\n').slice(1).map((l) => l.trim());
    const outside = lines.filter((l) => !l.includes(GUARD_PATH) && !l.includes(GUARD_URL));
    const user = outside.find((l) => !/\(node:|at node:|\(internal\/|<anonymous>|node_modules\/undici/.test(l));
    return (user ?? outside[0] ?? lines[0] ?? 'unknown').replace(/^at /, '');
  }

  /** Records a refused attempt; returns the message for the error. */
  function report(what) {
    const message = `network-guard: ${what} refused ${SUFFIX}`;
    const expected = process.env[EXPECT_VARIABLE] === '1';
    const line = `${new Date().toISOString()} pid=${process.pid} tid=${worker_threads.threadId} ${expected ? 'EXPECTED' : 'VIOLATION'} ${what} at ${callerFrame()}`;
    const logFile = process.env[LOG_VARIABLE];
    if (logFile) {
      try {
        appendFileSync(logFile, `${line.replace(/[\r\n]+/g, ' ')}\n`);
      } catch {
        // the stderr line below still says it
      }
    }
    if (!expected) {
      try {
        process.stderr.write(`\n!!! NETWORK GUARD VIOLATION: ${line}\n`);
      } catch {
        // nothing else to do
      }
    }
    return message;
  }

  function guardError(message, code, extra = {}) {
    return Object.assign(new Error(message), { code, networkGuard: true, ...extra });
  }

  /** The error a name that does not exist gets (no violation). */
  function notFound(hostname, syscall) {
    return guardError(`${syscall} ENOTFOUND ${hostname}`, 'ENOTFOUND', { errno: -3008, syscall, hostname });
  }

  /** A name this process may not resolve: quietly not found, or a violation. */
  function refusedName(hostname, syscall, what) {
    if (isReservedTestName(hostname)) return notFound(hostname, syscall);
    return guardError(report(what), 'ENOTFOUND', { syscall, hostname });
  }

  // ----- dns.lookup / dns.promises.lookup --------------------------------------------------

  const originalLookup = dns.lookup;
  const originalPromisesLookup = dns.promises.lookup;

  function familyOf(options) {
    const f = typeof options === 'number' ? options : options?.family;
    return f === 'IPv6' ? 6 : f === 'IPv4' ? 4 : Number(f) || 0;
  }

  /** undefined: let getaddrinfo answer; otherwise the synthetic answer or the error */
  function decideLookup(hostname, options) {
    if (typeof hostname !== 'string' || hostname === '' || net.isIP(hostname) !== 0) return undefined;
    const family = familyOf(options);
    const n = bareName(hostname);
    if (n === 'localhost' && family !== 6) return undefined;
    if (isLocalName(n)) {
      const list = family === 6 ? [{ address: '::1', family: 6 }] : family === 4 ? [{ address: '127.0.0.1', family: 4 }] : [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }];
      return { list };
    }
    return { error: refusedName(hostname, 'getaddrinfo', `DNS lookup of ${hostname}`) };
  }

  function guardedLookup(hostname, options, callback) {
    const cb = typeof options === 'function' ? options : callback;
    if (typeof cb !== 'function') return Reflect.apply(originalLookup, this, arguments);
    const decision = decideLookup(hostname, typeof options === 'function' ? undefined : options);
    if (decision === undefined) return Reflect.apply(originalLookup, this, arguments);
    const all = typeof options === 'object' && options !== null && options.all === true;
    process.nextTick(() => {
      if (decision.error) return cb(decision.error);
      if (all) return cb(null, decision.list);
      return cb(null, decision.list[0].address, decision.list[0].family);
    });
    return {};
  }
  for (const symbol of Object.getOwnPropertySymbols(originalLookup)) {
    Object.defineProperty(guardedLookup, symbol, Object.getOwnPropertyDescriptor(originalLookup, symbol));
  }

  async function guardedPromisesLookup(hostname, options) {
    const decision = decideLookup(hostname, options);
    if (decision === undefined) return Reflect.apply(originalPromisesLookup, this, arguments);
    if (decision.error) throw decision.error;
    const all = typeof options === 'object' && options !== null && options.all === true;
    return all ? decision.list : decision.list[0];
  }

  dns.lookup = guardedLookup;
  dns.promises.lookup = guardedPromisesLookup;

  const originalLookupService = dns.lookupService;
  const originalPromisesLookupService = dns.promises.lookupService;
  dns.lookupService = function lookupService(address, port, callback) {
    if (isLoopbackAddress(address) || typeof callback !== 'function') return Reflect.apply(originalLookupService, this, arguments);
    const err = guardError(report(`reverse lookup of ${address}`), 'ENOTFOUND', { syscall: 'getnameinfo' });
    process.nextTick(callback, err);
    return {};
  };
  dns.promises.lookupService = async function lookupService(address, port) {
    if (isLoopbackAddress(address)) return Reflect.apply(originalPromisesLookupService, this, arguments);
    throw guardError(report(`reverse lookup of ${address}`), 'ENOTFOUND', { syscall: 'getnameinfo' });
  };

  // ----- dns.resolve* / Resolver: never reach the DNS server -------------------------------

  const SYSCALLS = {
    resolve: 'query', resolve4: 'queryA', resolve6: 'queryAaaa', resolveAny: 'queryAny', resolveCaa: 'queryCaa', resolveCname: 'queryCname',
    resolveMx: 'queryMx', resolveNs: 'queryNs', resolveTxt: 'queryTxt', resolveSrv: 'querySrv', resolvePtr: 'queryPtr',
    resolveNaptr: 'queryNaptr', resolveSoa: 'querySoa', reverse: 'getHostByAddr',
  };

  /** Answer for one resolve call: { value } or { error }. */
  function answerResolve(method, name, optionsOrType) {
    const syscall = SYSCALLS[method];
    if (method === 'reverse') {
      if (isLoopbackAddress(name)) return { error: notFound(name, syscall) };
      return { error: guardError(report(`reverse DNS query for ${name}`), 'ENOTFOUND', { syscall, hostname: name }) };
    }
    if (typeof name !== 'string' || net.isIP(bareName(name)) !== 0) return { error: notFound(name, syscall) };
    if (isLocalName(name)) {
      const type = method === 'resolve' ? String(optionsOrType ?? 'A').toUpperCase() : method === 'resolve4' ? 'A' : method === 'resolve6' ? 'AAAA' : '';
      const address = type === 'A' ? '127.0.0.1' : type === 'AAAA' ? '::1' : undefined;
      if (address === undefined) return { error: notFound(name, syscall) };
      const ttl = typeof optionsOrType === 'object' && optionsOrType !== null && optionsOrType.ttl === true;
      return { value: [ttl ? { address, ttl: 0 } : address] };
    }
    return { error: refusedName(name, syscall, `DNS query for ${name}`) };
  }

  function callbackResolver(method) {
    return function guardedResolve(name, ...rest) {
      const callback = rest.pop();
      if (typeof callback !== 'function') throw Object.assign(new TypeError('The "callback" argument must be of type function'), { code: 'ERR_INVALID_ARG_TYPE' });
      const answer = answerResolve(method, name, rest[0]);
      process.nextTick(() => (answer.error ? callback(answer.error) : callback(null, answer.value)));
      return {};
    };
  }

  function promiseResolver(method) {
    return async function guardedResolve(name, optionsOrType) {
      const answer = answerResolve(method, name, optionsOrType);
      if (answer.error) throw answer.error;
      return answer.value;
    };
  }

  for (const method of Object.keys(SYSCALLS)) {
    if (typeof dns[method] === 'function') dns[method] = callbackResolver(method);
    if (typeof dns.promises[method] === 'function') dns.promises[method] = promiseResolver(method);
    if (Object.hasOwn(dns.Resolver.prototype, method)) dns.Resolver.prototype[method] = callbackResolver(method);
    if (Object.hasOwn(dns.promises.Resolver.prototype, method)) dns.promises.Resolver.prototype[method] = promiseResolver(method);
  }

  // ----- TCP: net.Socket.prototype.connect (net, tls, http(s), undici fetch, pg, ioredis, nodemailer)

  const originalConnect = net.Socket.prototype.connect;

  function refuseSocket(socket, error) {
    process.nextTick(() => socket.destroy(error));
    return socket;
  }

  /** A test's own DNS seam: whatever it answers must be loopback. */
  function checkedLookup(lookup, port) {
    return function guardedSeamLookup(hostname, options, callback) {
      const cb = typeof options === 'function' ? options : callback;
      const wrapped = (err, address, family) => {
        if (err) return cb(err);
        const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
        const outside = addresses.find((a) => !isLoopbackAddress(a));
        if (outside !== undefined) return cb(guardError(report(`connection to ${hostname}:${port} (${outside})`), 'ENETUNREACH', { address: outside, port }));
        return cb(null, address, family);
      };
      return typeof options === 'function' ? lookup.call(this, hostname, wrapped) : lookup.call(this, hostname, options, wrapped);
    };
  }

  net.Socket.prototype.connect = function guardedConnect(...args) {
    const normalized = Array.isArray(args[0]) ? args[0] : net._normalizeArgs(args);
    const [options, callback] = normalized;
    if (options === null || typeof options !== 'object' || options.path) return Reflect.apply(originalConnect, this, args);
    const host = options.host === undefined || options.host === null || options.host === '' ? 'localhost' : String(options.host);
    const port = options.port;
    const ip = host.replace(/^\[|\]$/g, '');
    if (net.isIP(ip) !== 0) {
      if (isLoopbackAddress(ip)) return Reflect.apply(originalConnect, this, args);
      return refuseSocket(this, guardError(report(`connection to ${host}:${port}`), 'ENETUNREACH', { address: ip, port }));
    }
    const lookup = options.lookup;
    if (typeof lookup === 'function' && lookup !== guardedLookup && lookup !== originalLookup) {
      return Reflect.apply(originalConnect, this, [{ ...options, lookup: checkedLookup(lookup, port) }, ...(typeof callback === 'function' ? [callback] : [])]);
    }
    // localhost goes to the (guarded) dns.lookup; so do the reserved test names, which fail there with ENOTFOUND
    if (isLocalName(host) || isReservedTestName(host)) return Reflect.apply(originalConnect, this, args);
    return refuseSocket(this, guardError(report(`connection to ${host}:${port}`), 'ENOTFOUND', { hostname: host, port }));
  };

  // ----- UDP: dgram sends and connects ----------------------------------------------------

  function udpRefusal(address, port) {
    if (address === undefined || address === null || typeof address === 'function') return undefined;
    const a = String(address);
    if (net.isIP(a.replace(/^\[|\]$/g, '')) !== 0) {
      return isLoopbackAddress(a) ? undefined : guardError(report(`UDP to ${a}:${port}`), 'ENETUNREACH', { address: a, port });
    }
    if (isLocalName(a)) return undefined;
    return refusedName(a, 'getaddrinfo', `UDP to ${a}:${port}`);
  }

  const originalSend = dgram.Socket.prototype.send;
  dgram.Socket.prototype.send = function guardedSend(buffer, offset, length, port, address, callback) {
    let connected = false;
    try {
      connected = this.remoteAddress() !== undefined;
    } catch {
      connected = false;
    }
    if (!connected) {
      const sixArgs = address || (port && typeof port !== 'function');
      const to = sixArgs ? address : length;
      const toPort = sixArgs ? port : offset;
      const cb = sixArgs ? callback : port;
      const error = udpRefusal(to, toPort);
      if (error) {
        if (typeof cb === 'function') process.nextTick(cb, error);
        else process.nextTick(() => this.emit('error', error));
        return;
      }
    }
    return Reflect.apply(originalSend, this, arguments);
  };

  const originalUdpConnect = dgram.Socket.prototype.connect;
  dgram.Socket.prototype.connect = function guardedUdpConnect(port, address, callback) {
    const error = udpRefusal(typeof address === 'function' ? undefined : address, port);
    if (error) {
      process.nextTick(() => this.emit('error', error));
      return;
    }
    return Reflect.apply(originalUdpConnect, this, arguments);
  };

  // ----- child processes: the guard goes with them ---------------------------------------

  const IMPORT_OPTION = `--import ${JSON.stringify(GUARD_URL)}`;
  const REQUIRE_OPTION = `--require ${JSON.stringify(GUARD_PATH)}`;

  function withOption(nodeOptions, option) {
    const current = typeof nodeOptions === 'string' ? nodeOptions.trim() : '';
    // --import for a process, --require for a thread (a thread ignores --import): each its own
    if (current.includes(option)) return current;
    return current === '' ? option : `${current} ${option}`;
  }

  /** A copy of env with the guard in NODE_OPTIONS and the log file named. */
  function guardedEnv(env, option) {
    const copy = { ...(env ?? process.env) };
    copy.NODE_OPTIONS = withOption(copy.NODE_OPTIONS, option);
    if (copy[LOG_VARIABLE] === undefined && process.env[LOG_VARIABLE] !== undefined) copy[LOG_VARIABLE] = process.env[LOG_VARIABLE];
    return copy;
  }

  function guardedEnvPairs(pairs) {
    const out = [...pairs];
    const at = out.findIndex((p) => p.startsWith('NODE_OPTIONS='));
    const nodeOptions = withOption(at === -1 ? '' : out[at].slice('NODE_OPTIONS='.length), IMPORT_OPTION);
    if (at === -1) out.push(`NODE_OPTIONS=${nodeOptions}`);
    else out[at] = `NODE_OPTIONS=${nodeOptions}`;
    if (process.env[LOG_VARIABLE] !== undefined && !out.some((p) => p.startsWith(`${LOG_VARIABLE}=`))) out.push(`${LOG_VARIABLE}=${process.env[LOG_VARIABLE]}`);
    return out;
  }

  // spawn, fork, exec and execFile all end in ChildProcess.prototype.spawn with options.envPairs
  const originalChildSpawn = child_process.ChildProcess.prototype.spawn;
  child_process.ChildProcess.prototype.spawn = function guardedChildSpawn(options) {
    if (options !== null && typeof options === 'object' && Array.isArray(options.envPairs)) {
      return Reflect.apply(originalChildSpawn, this, [{ ...options, envPairs: guardedEnvPairs(options.envPairs) }]);
    }
    return Reflect.apply(originalChildSpawn, this, arguments);
  };

  // the synchronous ones call an internal spawnSync, so each export is wrapped
  function wrapSync(name, optionsIndexOf) {
    const original = child_process[name];
    if (typeof original !== 'function') return;
    child_process[name] = function guardedSync(...args) {
      const at = optionsIndexOf(args);
      const given = args[at];
      const options = given !== null && typeof given === 'object' ? given : {};
      const next = [...args];
      while (next.length < at) next.push(undefined);
      next[at] = { ...options, env: guardedEnv(options.env, IMPORT_OPTION) };
      return Reflect.apply(original, this, next);
    };
  }
  const afterFileAndArgs = (args) => (Array.isArray(args[1]) || args[1] === undefined || args[1] === null ? 2 : 1);
  wrapSync('spawnSync', afterFileAndArgs);
  wrapSync('execFileSync', afterFileAndArgs);
  wrapSync('execSync', () => 1);

  // ----- worker threads ----------------------------------------------------------------------

  const OriginalWorker = worker_threads.Worker;
  class Worker extends OriginalWorker {
    constructor(filename, options) {
      const o = { ...(options ?? {}) };
      if (o.env === worker_threads.SHARE_ENV) o.execArgv = [...(o.execArgv ?? process.execArgv), '--require', GUARD_PATH];
      else o.env = guardedEnv(o.env, REQUIRE_OPTION);
      super(filename, o);
    }
  }
  worker_threads.Worker = Worker;

  syncBuiltinESMExports();
}
