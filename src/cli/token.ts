/**
 * `custody token create --role R --name N [--json]` (SPEC section 9): prints the token once.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { openStore } from '../main.js';
import { assertRole, createToken } from '../service/tokens.js';
import { action, emit } from './output.js';

export function registerToken(program: Command): void {
  const token = program.command('token').description('API tokens');
  token
    .command('create')
    .description('create a token for a principal; it is shown once and stored only hashed')
    .requiredOption('--role <role>', 'requester | approver | admin | auditor')
    .requiredOption('--name <name>', 'principal name; for an approver or admin, the approver id of the plan')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { role: string; name: string; json?: boolean }) => {
        const role = assertRole(opts.role);
        const store = await openStore(loadConfig());
        try {
          const created = await createToken(store, role, opts.name, Date.now());
          emit(opts, { token: created.token, id: created.principal.id, name: created.principal.name, role }, () => [
            created.token,
            `(${role} token for ${opts.name}; shown once, stored only as its sha256)`,
          ]);
        } finally {
          await store.close();
        }
      }),
    );
}
