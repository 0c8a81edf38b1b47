/**
 * `custody init`: create DATA_DIR and the store (migrations), and show the configured device.
 */
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { openDevices, openStore, sqlitePath } from '../main.js';
import { action, emit } from './output.js';

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create the data directory and the store; check the HSM answers')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const config = loadConfig();
        const store = await openStore(config);
        try {
          const ok = await store.ping();
          let devices: { type: string; id?: string; error?: string }[];
          try {
            const set = openDevices(config);
            try {
              devices = (await set.status(5_000)).map((d) => (d.info ? { type: d.type, id: d.info.id } : { type: d.type, error: d.error ?? 'down' }));
            } finally {
              await set.close();
            }
          } catch (error) {
            devices = [{ type: 'sim', error: error instanceof Error ? error.message : String(error) }];
          }
          const result = { dataDir: config.dataDir, store: sqlitePath(config.dataDir), storeOk: ok, hsmUrl: config.hsmUrl, devices };
          emit(opts, result, () => [
            `data directory: ${config.dataDir}`,
            `store: ${result.store} (${ok ? 'ready' : 'not answering'})`,
            ...devices.map((d) => (d.error !== undefined ? `${d.type} device: not reachable (${d.error})` : `${d.type} device: ${d.id}`)),
          ]);
        } finally {
          await store.close();
        }
      }),
    );
}
