/**
 * `custody init`: create DATA_DIR and the store (migrations), and show the configured device.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { openDevice, openStore, sqlitePath } from '../main.js';
import { action, emit } from './output.js';

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create the data directory and the store; check the HSM answers')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const config = loadConfig();
        const store = openStore(config);
        try {
          const ok = await store.ping();
          let device: { id: string; type: string } | { error: string };
          try {
            const d = openDevice(config);
            try {
              const info = await d.info();
              device = { id: info.id, type: info.type };
            } finally {
              await d.close();
            }
          } catch (error) {
            device = { error: error instanceof Error ? error.message : String(error) };
          }
          const result = { dataDir: config.dataDir, store: sqlitePath(config.dataDir), storeOk: ok, hsmUrl: config.hsmUrl, device };
          emit(opts, result, () => [
            `data directory: ${config.dataDir}`,
            `store: ${result.store} (${ok ? 'ready' : 'not answering'})`,
            'error' in device ? `device at ${config.hsmUrl}: not reachable (${device.error})` : `device at ${config.hsmUrl}: ${device.id}`,
          ]);
        } finally {
          await store.close();
        }
      }),
    );
}
