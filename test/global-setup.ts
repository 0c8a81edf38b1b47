/**
 * Once per `npm test`: a directory for the logs of every process the suite starts, and at the end a
 * search of all of them for every secret the suite made (test/helpers/suite-logs.ts) and the demo
 * approvers' secret keys. A secret found in a log fails the run.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'custody-suite-logs-'));
  project.provide('suiteLogDir', dir);
  return () => {
    const files = readdirSync(dir);
    const approverSecrets = Object.values(
      (JSON.parse(readFileSync(resolve(import.meta.dirname, '..', 'examples', 'demo-approver-keys.json'), 'utf8')) as { keys: Record<string, string> }).keys,
    );
    const secrets = new Set<string>(approverSecrets);
    for (const f of files.filter((f) => f.startsWith('secrets-'))) for (const s of JSON.parse(readFileSync(join(dir, f), 'utf8')) as string[]) secrets.add(s);
    const logs = files.filter((f) => f.endsWith('.log'));
    const leaks: string[] = [];
    let bytes = 0;
    for (const f of logs) {
      const text = readFileSync(join(dir, f), 'utf8');
      bytes += text.length;
      for (const s of secrets) if (text.includes(s)) leaks.push(`${f} contains a secret beginning ${s.slice(0, 4)}…`);
    }
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`secrets in logs: searched ${logs.length} process logs (${Math.round(bytes / 1024)} KiB) for ${secrets.size} secrets: ${leaks.length} found\n`);
    if (leaks.length > 0) {
      // An error thrown by a teardown is only printed; the exit code is what CI reads.
      process.stderr.write(`secrets found in the suite's logs:\n${leaks.join('\n')}\n`);
      process.exitCode = 1;
    }
  };
}
