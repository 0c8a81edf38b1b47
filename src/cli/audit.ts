/**
 * `custody audit verify`: recompute the audit hash chain offline, on the same store as the gateway.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { NotFoundError } from '../../common/errors.js';
import { loadConfig } from '../config.js';
import { openStore, sqlitePath } from '../main.js';
import { action, emit } from './output.js';

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('verify the hash chain; exit 1 and name the first bad entry if it is broken')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const config = loadConfig();
        // Verifying is reading: a mistyped DATA_DIR must not create an empty store and call it verified.
        if (config.databaseUrl === null && !existsSync(sqlitePath(config.dataDir))) {
          throw new NotFoundError('store_not_found', `no store at ${sqlitePath(config.dataDir)}: set DATA_DIR (or DATABASE_URL) to the gateway's store`);
        }
        const store = await openStore(config);
        try {
          const result = await store.verifyAudit();
          if (result.ok && result.entries === 0) {
            throw new NotFoundError('audit_empty', `the store at ${config.databaseUrl === null ? sqlitePath(config.dataDir) : 'DATABASE_URL'} holds no audit entries: nothing to verify; check DATA_DIR or DATABASE_URL names the gateway's store`);
          }
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
