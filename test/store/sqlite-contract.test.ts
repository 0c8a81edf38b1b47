/**
 * The store contract (store-contract.ts) on the SQLite store, each test on a new file.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { describeStoreContract } from './store-contract.js';

describeStoreContract('the SQLite store', async () => ({ store: openSqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'store-')), 'custody.db') }) }));
