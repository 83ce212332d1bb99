import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { AppDeps } from '../deps.js';
import { DomainError } from '../errors.js';
import { failureText, MAX_FAILURE_LINE, plainText, type FailureContext } from './failure.js';

/** Bad arguments: exit 2 with one line on stderr. */
export class UsageError extends Error {}

/** A command or sub-command: the usage its --help prints, and what it does with the arguments after its name. */
export interface Command {
  usage: string;
  run(args: string[]): Promise<void>;
}

/** A command that does the work itself: --help or -h anywhere before `--` prints its usage and does nothing else. */
export function command(usage: string, run: (args: string[]) => Promise<void>): Command {
  return {
    usage,
    async run(args) {
      const end = args.indexOf('--');
      if ((end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h')) {
        process.stdout.write(usage);
        return;
      }
      await run(args);
    },
  };
}

/** A command made of sub-commands (`users create`): the first argument names one; --help, -h or help alone prints the group's usage. */
export function commandGroup(o: { usage: string; misuse: string; commands: Record<string, Command> }): Command {
  return {
    usage: o.usage,
    async run(args) {
      const [name, ...rest] = args;
      if (name === '--help' || name === '-h' || name === 'help') {
        process.stdout.write(o.usage);
        return;
      }
      const sub = name !== undefined && Object.hasOwn(o.commands, name) ? o.commands[name] : undefined;
      if (sub === undefined) throw new UsageError(o.misuse);
      await sub.run(rest);
    },
  };
}

/** `--name value` options, each given at most once in effect (the last one wins); anything else is a UsageError. */
export function parseOptions<const N extends string>(args: string[], names: readonly N[]): Partial<Record<N, string>> {
  const options = Object.fromEntries(names.map((name) => [name, { type: 'string' as const }]));
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as Partial<Record<N, string>>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Positional arguments only; `--` lets one start with a dash. */
export function parsePositionals(args: string[]): string[] {
  try {
    return parseArgs({ args, options: {}, strict: true, allowPositionals: true }).positionals;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function configFromEnv(): Config {
  return loadConfig(process.env);
}

/** Runs fn with the production dependencies of a one-off command (no dev mailbox, no worker), closed afterwards. */
export async function withRuntime(fn: (deps: AppDeps) => Promise<void>): Promise<void> {
  // Loaded here, not at start-up: --help and bad arguments answer without the database drivers,
  // argon2 and the mail stack (a few hundred milliseconds of CPU).
  const [{ createRuntime }, { createLogger }] = await Promise.all([import('../runtime.js'), import('../logger.js')]);
  const runtime = await createRuntime(configFromEnv(), createLogger('warn'), process.env, { role: 'command' });
  try {
    await fn(runtime.deps);
  } finally {
    await runtime.close();
  }
}

/**
 * The one line on stderr and the exit status for a command that failed: 2 for bad arguments, else 1.
 * An unexpected error shows its whole message and causes on one line (no stack), credentials
 * hidden, with a hint for the usual start-up failures (see failure.ts).
 */
export function describeFailure(err: unknown, context: FailureContext = {}): { line: string; exitCode: 1 | 2 } {
  // The whole line, "gatehouse: " included, is at most MAX_FAILURE_LINE characters.
  const max = MAX_FAILURE_LINE - 'gatehouse: '.length;
  if (err instanceof UsageError) return { line: `gatehouse: ${plainText(err.message, context, max)}\n`, exitCode: 2 };
  // Every bad variable at once, one per line: the one exception to one line.
  if (err instanceof ConfigError) return { line: `gatehouse: ${err.message}\n`, exitCode: 1 };
  if (err instanceof DomainError) return { line: `gatehouse: ${plainText(`${err.message}${fieldsOf(err.details.fields, '')}`, context, max)}\n`, exitCode: 1 };
  return { line: `gatehouse: ${failureText(err, context, max)}\n`, exitCode: 1 };
}

/** " (name: message; …)" for field errors, each name after prefix; else nothing. */
export function fieldsOf(fields: unknown, prefix: string): string {
  if (typeof fields !== 'object' || fields === null) return '';
  const entries = Object.entries(fields as Record<string, string>);
  return entries.length === 0 ? '' : ` (${entries.map(([name, message]) => `${prefix}${name}: ${message}`).join('; ')})`;
}

/** A password or secret from stdin: prompted without echo on a terminal, else read whole with one trailing newline stripped. */
export async function readSecretInput(prompt: string): Promise<string> {
  let value: string;
  if (process.stdin.isTTY) {
    value = await promptHidden(prompt);
  } else {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    value = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if (value.length === 0) throw new UsageError('an empty value was given on stdin');
  return value;
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let value = '';
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new Error('cancelled'));
          return;
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = (): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}
