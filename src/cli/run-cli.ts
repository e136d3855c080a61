/**
 * The one way every command-line tool starts (train, reproduce, serve, stats, synth, fuzz, bench*,
 * the package's `chord-rerank` bin): `--help` prints the usage and exits 0 before anything else is
 * parsed, and an expected failure prints one line, `<program>: <CODE>: <message>`, no stack trace.
 *
 * Expected failures are the ones the user can fix: a ChordError (every error chord-rerank throws
 * on purpose carries a stable `code`) and Node's own argument errors (`util.parseArgs` throws
 * TypeErrors with an `ERR_PARSE_ARGS_*` code). Anything else is a bug and keeps its stack.
 *
 * Node-only (process, stdout), so it lives outside src/core; it imports only core.
 */
import { ChordError } from '../core/errors.ts';

/** Bad command-line usage (a missing or malformed option): exit status 2, like parseArgs' own errors. */
export class UsageError extends ChordError<'UsageError'> {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('USAGE', message);
  }
}

export interface CliSpec {
  /** What the error line starts with, e.g. "train" or "chord-rerank serve". */
  readonly program: string;
  /** Printed for --help / -h. */
  readonly usage: string;
  /** The command; a number it returns becomes the exit status. */
  readonly main: (argv: string[]) => unknown;
  /** Defaults to process.argv.slice(2). */
  readonly argv?: readonly string[];
}

/** True when argv asks for help: `--help` or `-h` before a `--` terminator. */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

function parseArgsCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return error instanceof TypeError && typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_') ? code : undefined;
}

/** The one-line report of an expected failure, and its exit status; undefined for a bug. */
export function describeCliError(program: string, error: unknown): { line: string; exitCode: number } | undefined {
  const argsCode = parseArgsCode(error);
  const expected = error instanceof ChordError ? error.code : argsCode;
  if (expected === undefined) return undefined;
  const message = (error as Error).message.replace(/\s*\n\s*/g, ' ').trim();
  const usage = argsCode !== undefined || error instanceof UsageError;
  return { line: `${program}: ${expected}: ${message}${usage ? ' (--help for usage)' : ''}`, exitCode: usage ? 2 : 1 };
}

/**
 * Runs a command: help first, then `main`; prints an expected failure as one line and exits with
 * its status (2 for usage errors, 1 otherwise). A command that succeeds is left to finish on its
 * own (its servers and timers may still be running), with the status it returned.
 */
export async function runCli(spec: CliSpec): Promise<void> {
  const argv = [...(spec.argv ?? process.argv.slice(2))];
  if (wantsHelp(argv)) {
    process.stdout.write(`${spec.usage.trimEnd()}\n`);
    return;
  }
  try {
    const status = await spec.main(argv);
    if (typeof status === 'number') process.exitCode = status;
  } catch (error) {
    const report = describeCliError(spec.program, error);
    if (report === undefined) {
      process.stderr.write(`${spec.program}: unexpected error\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    }
    process.stderr.write(`${report.line}\n`);
    process.exit(report.exitCode);
  }
}
