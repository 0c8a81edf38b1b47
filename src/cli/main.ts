#!/usr/bin/env node
/**
 * The `custody` command (SPEC section 7): one file per subcommand in this folder.
 */
import { Command, CommanderError } from 'commander';
import { registerApprove } from './approve.js';
import { registerApprover } from './approver.js';
import { registerAttest } from './attest.js';
import { registerAudit } from './audit.js';
import { registerBackup } from './backup.js';
import { registerCustodian } from './custodian.js';
import { registerCeremony } from './ceremony.js';
import { registerFreeze } from './freeze.js';
import { registerInit } from './init.js';
import { registerServe } from './serve.js';
import { registerToken } from './token.js';

// Stores, transcripts, key files, shares and backups this command writes are its owner's only (0600 / 0700).
process.umask(0o077);

const program = new Command();
program
  .name('custody')
  .description('custody signing gateway: ceremonies, tokens, approvals, freezes, audit')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

registerInit(program);
registerToken(program);
registerApprover(program);
registerCeremony(program);
registerApprove(program);
registerFreeze(program);
registerAudit(program);
registerAttest(program);
registerBackup(program);
registerCustodian(program);
registerServe(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`custody: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
