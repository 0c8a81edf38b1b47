/**
 * `custody audit verify`: recompute the audit hash chain offline, on the same store as the gateway.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { openStore } from '../main.js';
import { action, emit } from './output.js';

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('verify the hash chain; exit 1 and name the first bad entry if it is broken')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const store = await openStore(loadConfig());
        try {
          const result = await store.verifyAudit();
          emit(opts, result, () =>
            result.ok
              ? [`audit chain verifies: ${result.entries} entries, head ${result.headHash ?? '(empty)'}`]
              : [`audit chain BROKEN at entry ${result.firstBad?.seq}: ${result.firstBad?.reason}`],
          );
          if (!result.ok) process.exitCode = 1;
        } finally {
          await store.close();
        }
      }),
    );
}
