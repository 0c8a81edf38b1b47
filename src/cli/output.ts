/**
 * How every `custody` subcommand answers (SPEC section 7): human text by default, JSON with --json;
 * on failure one line `custody: <reason>` on stderr and a non-zero exit status.
 */
import { CustodyError } from '../../common/errors.js';

export interface OutputOptions {
  readonly json?: boolean;
}

export function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** Prints `data` as JSON with --json, otherwise the human lines. */
export function emit(options: OutputOptions, data: unknown, human: () => string[]): void {
  if (options.json) {
    process.stdout.write(JSON.stringify(data, jsonReplacer, 2) + '\n');
  } else {
    for (const line of human()) process.stdout.write(line + '\n');
  }
}

/** Exit status of a failed command: 2 for bad input, 1 otherwise. */
export function exitCodeOf(error: unknown): number {
  return error instanceof CustodyError && error.kind === 'invalid' ? 2 : 1;
}

export function reasonOf(error: unknown): string {
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}

/** Runs a command action, turning any failure into one line and an exit status. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (error) {
      process.stderr.write(`custody: ${reasonOf(error)}\n`);
      process.exitCode = exitCodeOf(error);
    }
  };
}
