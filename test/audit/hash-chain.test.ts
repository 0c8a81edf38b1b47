/**
 * The audit hash chain: any single change to a valid chain is found, at the right entry.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GENESIS_HASH, nextAuditEntry, verifyAuditChain } from '../../src/audit/hash-chain.js';
import type { AuditEntry } from '../../src/store/store.js';

function chain(n: number): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    out.push(nextAuditEntry(out[i - 1] ?? null, { type: 'withdrawal.submitted', actor: 'ops', subject: `withdrawal:${i}`, data: { amount: String(i * 1000), n: i } }, 1_700_000_000_000 + i));
  }
  return out;
}

describe('the audit hash chain', () => {
  it('when the chain is intact, then it verifies and reports its head', () => {
    const c = chain(5);
    expect(c[0]!.prevHash).toBe(GENESIS_HASH);
    expect(verifyAuditChain(c)).toEqual({ ok: true, entries: 5, headHash: c[4]!.hash });
    expect(verifyAuditChain([])).toEqual({ ok: true, entries: 0, headHash: null });
  });

  it('when an entry is altered, deleted, swapped or inserted, then the first bad entry is named', () => {
    const c = chain(6);
    const altered = c.map((e, i) => (i === 2 ? { ...e, data: { ...e.data, amount: '1' } } : e));
    expect(verifyAuditChain(altered).firstBad).toEqual({ seq: 3, reason: 'content does not match its hash (altered)' });
    const deleted = c.filter((_, i) => i !== 3);
    expect(verifyAuditChain(deleted).firstBad?.seq).toBe(5);
    expect(verifyAuditChain(deleted).firstBad?.reason).toMatch(/entry 4 is missing/);
    const swapped = [c[0]!, c[2]!, c[1]!, ...c.slice(3)];
    expect(verifyAuditChain(swapped).firstBad?.seq).toBe(3);
    const forged = nextAuditEntry(c[1]!, { type: 'x', actor: 'mallory', subject: 's', data: {} }, 0);
    const inserted = [c[0]!, c[1]!, forged, ...c.slice(2)];
    expect(verifyAuditChain(inserted).ok).toBe(false);
    expect(verifyAuditChain(inserted).firstBad?.seq).toBe(3);
  });

  it('when any single field of any entry changes, then verification fails (property)', () => {
    const c = chain(8);
    const fields = ['seq', 'at', 'type', 'actor', 'subject', 'data', 'prevHash', 'hash'] as const;
    fc.assert(
      fc.property(fc.nat({ max: 7 }), fc.constantFrom(...fields), fc.string({ minLength: 1, maxLength: 8 }), (index, field, noise) => {
        const copy = c.map((e) => ({ ...e }));
        const e = copy[index]! as Record<string, unknown>;
        if (field === 'seq') e.seq = (e.seq as number) + 1 + noise.length;
        else if (field === 'data') e.data = { ...(e.data as object), noise };
        else e[field] = `${e[field] as string}${noise}`;
        expect(verifyAuditChain(copy as AuditEntry[]).ok).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
