/**
 * The device's sign-once record (hsm-sim/sign-journal.ts, SPEC rule 5): what a replacement names is
 * checked against what the signed transactions spent, and one request yields one transaction.
 */
import { describe, expect, it } from 'vitest';
import { SignJournal, transactionKey } from '../../hsm-sim/sign-journal.js';
import type { SignedRecord } from '../../hsm-sim/sealed-state.js';

const CHAIN = 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328';

function record(requestId: string, spends: string[], replaces?: string): SignedRecord {
  return { poolId: 'p', chain: CHAIN, asset: 'BTC', amount: '100', at: 1, requestId, spends, ...(replaces ? { replaces } : {}), scheme: 'ecdsa-secp256k1', signatures: [], recoveries: [] };
}

function journalWith(...records: [string, SignedRecord][]): SignJournal {
  return new SignJournal(Object.fromEntries(records.map(([digest, r]) => [transactionKey('p', CHAIN, digest), r])));
}

const refusal = (j: SignJournal, digest: string, spends: string[], requestId: string, replaces: string | null) =>
  j.signOnceRefusal('p', CHAIN, transactionKey('p', CHAIN, digest), spends, requestId, replaces);

describe('sign-once refusals', () => {
  it('when nothing conflicts and nothing is replaced, then a new request signs', () => {
    expect(refusal(journalWith(['d1', record('r1', ['utxo:a'])]), 'd2', ['utxo:b'], 'r2', null)).toBeNull();
  });

  it('when the replacement spends what the request it names spent, then it signs', () => {
    expect(refusal(journalWith(['d1', record('r1', ['utxo:a', 'utxo:b'])]), 'd2', ['utxo:a'], 'r2', 'r1')).toBeNull();
  });

  it('when the "replacement" spends nothing the named request spent, then not_a_replacement', () => {
    expect(refusal(journalWith(['d1', record('r1', ['utxo:a'])]), 'd2', ['utxo:b'], 'r2', 'r1')).toMatch(/^not_a_replacement: this transaction spends nothing that request r1 spent/);
  });

  it('when a request names itself as replaced, then not_a_replacement', () => {
    expect(refusal(journalWith(), 'd1', ['utxo:a'], 'r1', 'r1')).toMatch(/^not_a_replacement: request r1 names itself/);
  });

  it('when a replacement also spends what an unrelated request spent, whatever the order, then sign_once naming that request', () => {
    const j = journalWith(['d0', record('r0', ['utxo:a'])], ['d1', record('r1', ['utxo:b'])]);
    expect(refusal(j, 'd2', ['utxo:b', 'utxo:a'], 'r2', 'r1')).toMatch(/^sign_once: request r0 /);
    expect(refusal(j, 'd2', ['utxo:a', 'utxo:b'], 'r2', 'r1')).toMatch(/^sign_once: request r0 /);
  });

  it('when a replaced request is named again by a second replacement, then not_a_replacement naming its replacement', () => {
    const j = journalWith(['d1', record('r1', ['utxo:a', 'utxo:b'])], ['d2', record('r2', ['utxo:a'], 'r1')]);
    expect(refusal(j, 'd3', ['utxo:b'], 'r3', 'r1')).toMatch(/^not_a_replacement: request r1 was replaced already by r2/);
  });

  it('when another transaction comes under a signed request id, then sign_once; the same transaction again is no refusal', () => {
    const j = journalWith(['d1', record('r1', ['utxo:a'])]);
    expect(refusal(j, 'd2', ['utxo:b'], 'r1', null)).toMatch(/^sign_once: request r1 already signed another transaction/);
    expect(refusal(j, 'd1', ['utxo:a'], 'r1', null)).toBeNull();
  });
});
