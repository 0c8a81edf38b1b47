/**
 * The sealed state's journal (hsm-sim/sealed-state.ts) on real files: changes survive a reopen,
 * nothing is in plain text, compaction folds the journal into a new snapshot, a torn last record is
 * dropped, an altered record stops the open, and a journal left over from an interrupted compaction
 * is discarded.
 */
import { copyFileSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JOURNAL_FILE, STATE_FILE, SealedStateError, SealedStore, WrongPinError, applyChange, type PoolBinding, type SimState, type StateChange } from '../../hsm-sim/sealed-state.js';

const PIN = 'journal-test-pin';
const fresh = (): SimState => ({ version: 1, attestationSecretKey: '11'.repeat(32), pools: {}, keys: {} });
const binding = (n: number): PoolBinding => ({
  approvers: Array.from({ length: 3 }, (_, i) => ({ id: `approver-${n}-${i}`, publicKey: `${String(n).padStart(4, '0')}${i}`.padEnd(64, 'c') })),
  threshold: 2,
});
const poolChange = (n: number): StateChange => ({ pools: { [`pool-${n}`]: binding(n) } });

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'sealed-'));
}

/** Opens, applies and journals each change as the device does; returns the state in memory. */
function record(path: string, changes: readonly StateChange[]): SimState {
  const { store, state } = SealedStore.open(path, PIN, fresh);
  for (const change of changes) {
    store.append(change);
    applyChange(state, change);
    if (store.compactionDue()) store.save(state);
  }
  return state;
}

describe('the journal of the sealed state', () => {
  it('when changes are journaled, then a reopen has every one of them and neither file holds them in plain text', () => {
    const d = dir();
    const changes = [poolChange(1), { keys: { k_1: { poolId: 'pool-1', chain: 'eip155:1', curve: 'secp256k1' as const, secretKey: 'ab'.repeat(32), publicKey: '02' + 'cd'.repeat(32) } } }, { governance: { admins: binding(9).approvers, quorum: 2 } }];
    const written = record(d, changes);
    const { state } = SealedStore.open(d, PIN, fresh);
    expect(state).toEqual(written);
    expect(state.keys.k_1?.poolId).toBe('pool-1');
    expect(state.governance?.quorum).toBe(2);
    for (const file of [STATE_FILE, JOURNAL_FILE]) {
      const text = readFileSync(join(d, file)).toString('latin1');
      expect(text).not.toContain('pool-1');
      expect(text).not.toContain('ab'.repeat(32));
    }
    expect(readFileSync(join(d, JOURNAL_FILE)).subarray(0, 8).toString('ascii')).toBe('CSIMJRNL');
  });

  it('when the journal outgrows the snapshot, then it is compacted: a new snapshot holds everything and the journal starts again', () => {
    const d = dir();
    // ~5,000 records of ~400 bytes: past the 1 MiB floor, so at least one compaction happens.
    const changes = Array.from({ length: 5_000 }, (_, i) => poolChange(i));
    const written = record(d, changes);
    expect(statSync(join(d, JOURNAL_FILE)).size).toBeLessThan(1024 * 1024);
    // The first snapshot held an empty state (~100 bytes); the compacted one holds thousands of pools.
    expect(statSync(join(d, STATE_FILE)).size).toBeGreaterThan(500_000);
    const { state } = SealedStore.open(d, PIN, fresh);
    expect(Object.keys(state.pools)).toHaveLength(5_000);
    expect(state).toEqual(written);
  });

  it('when the last record was cut short by a crash, then it is dropped, the rest stands, and later changes are kept', () => {
    const d = dir();
    record(d, [poolChange(1), poolChange(2)]);
    const journal = join(d, JOURNAL_FILE);
    truncateSync(journal, statSync(journal).size - 5);
    const reopened = record(d, [poolChange(3)]);
    expect(Object.keys(reopened.pools).sort()).toEqual(['pool-1', 'pool-3']);
    expect(Object.keys(SealedStore.open(d, PIN, fresh).state.pools).sort()).toEqual(['pool-1', 'pool-3']);
  });

  it('when a record before the last is altered, then the state does not open', () => {
    const d = dir();
    record(d, [poolChange(1), poolChange(2)]);
    const journal = join(d, JOURNAL_FILE);
    const bytes = readFileSync(journal);
    bytes[20 + 30]! ^= 0x01; // inside the first record's ciphertext
    writeFileSync(journal, bytes);
    expect(() => SealedStore.open(d, PIN, fresh)).toThrow(SealedStateError);
    expect(() => SealedStore.open(d, PIN, fresh)).toThrow(/record 0 fails authentication/);
  });

  it('when the journal is from the snapshot before a compaction, then it is discarded, not applied twice', () => {
    const d = dir();
    record(d, [poolChange(1)]);
    const stale = join(d, 'stale.journal');
    copyFileSync(join(d, JOURNAL_FILE), stale);
    // A compaction: the new snapshot holds pool-1; a crash restores the old journal beside it.
    const { store, state } = SealedStore.open(d, PIN, fresh);
    applyChange(state, poolChange(2));
    store.save(state);
    copyFileSync(stale, join(d, JOURNAL_FILE));
    const reopened = SealedStore.open(d, PIN, fresh).state;
    expect(Object.keys(reopened.pools).sort()).toEqual(['pool-1', 'pool-2']);
  });

  it('when the PIN is wrong, then the journal is not read and the open fails with WrongPinError', () => {
    const d = dir();
    record(d, [poolChange(1)]);
    expect(() => SealedStore.open(d, 'another-pin', fresh)).toThrow(WrongPinError);
  });
});
