/**
 * Suite-wide evidence for "no secret in any log": every gateway and simulator process the tests start
 * appends what it writes to a file in one directory for the whole run, and every test that makes a
 * secret (tokens, PINs) records it there. test/global-setup.ts then searches every log for every
 * secret when the run ends, and fails the run if one is found.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    suiteLogDir: string;
  }
}

function dir(): string | null {
  try {
    return inject('suiteLogDir') ?? null;
  } catch {
    return null; // outside a vitest run (a helper imported by a script)
  }
}

/** A sink for one process's output lines; a no-op outside the suite. */
export function logSink(name: string): (line: string) => void {
  const d = dir();
  if (d === null) return () => undefined;
  const file = join(d, `${name}-${process.pid}-${randomBytes(4).toString('hex')}.log`);
  return (line) => appendFileSync(file, line + '\n');
}

/** Records secrets that must appear in no log of the run. */
export function recordSecrets(secrets: readonly string[]): void {
  const d = dir();
  if (d === null) return;
  writeFileSync(join(d, `secrets-${process.pid}-${randomBytes(4).toString('hex')}.json`), JSON.stringify(secrets.filter((s) => s.length >= 8)));
}
