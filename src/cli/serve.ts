/**
 * `custody serve` (SPEC section 9): the gateway alone, against the device at HSM_URL and the store in
 * DATA_DIR (or DATABASE_URL).
 */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { startGateway } from '../main.js';
import { action } from './output.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('start the gateway alone (HSM_URL, DATA_DIR or DATABASE_URL, PORT, HOST)')
    .action(
      action(async () => {
        const gateway = await startGateway(loadConfig());
        const stop = () => {
          gateway.close().then(
            () => process.exit(0),
            () => process.exit(1),
          );
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      }),
    );
}
