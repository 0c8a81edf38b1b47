/**
 * The audit log's hash chain: each entry commits to the previous one, so altering, deleting,
 * inserting or reordering any entry breaks every later link. The hash is sha256 over the RFC 8785
 * canonical JSON of the entry without its own hash.
 */
import { createHash } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';
import type { AuditEntry, AuditInput, AuditVerification } from '../store/store.js';

export const GENESIS_HASH = '0'.repeat(64);

export function auditEntryHash(entry: Omit<AuditEntry, 'hash'>): string {
  const { seq, at, type, actor, subject, data, prevHash } = entry;
  return createHash('sha256').update(canonicalize({ seq, at, type, actor, subject, data, prevHash }), 'utf8').digest('hex');
}

export function nextAuditEntry(prev: Pick<AuditEntry, 'seq' | 'hash'> | null, input: AuditInput, now: number): AuditEntry {
  const body = {
    seq: prev ? prev.seq + 1 : 1,
    at: new Date(now).toISOString(),
    type: input.type,
    actor: input.actor,
    subject: input.subject,
    // Round-trip through JSON so the hash covers exactly what the store keeps and gives back.
    data: JSON.parse(JSON.stringify(input.data)) as Record<string, unknown>,
    prevHash: prev ? prev.hash : GENESIS_HASH,
  };
  return { ...body, hash: auditEntryHash(body) };
}

/**
 * Walks the chain in order and reports the first entry that does not verify. Where the stored data
 * text is given, it must be exactly the JSON the hash covers: a duplicate key (which SQL's JSON
 * functions and JSON.parse resolve differently) or any edit outside what the hash covers is refused.
 */
export function verifyAuditChain(entries: Iterable<AuditEntry & { readonly storedData?: string }>): AuditVerification {
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let count = 0;
  for (const e of entries) {
    const bad = (reason: string): AuditVerification => ({ ok: false, entries: count, headHash: count > 0 ? prevHash : null, firstBad: { seq: e.seq, reason } });
    if (e.seq !== expectedSeq) {
      return bad(
        e.seq > expectedSeq
          ? `entry ${expectedSeq} is missing (deleted): found ${e.seq} after ${expectedSeq - 1}`
          : `entry ${e.seq} is out of order (reordered or inserted) after ${expectedSeq - 1}`,
      );
    }
    if (e.prevHash !== prevHash) return bad('prevHash does not match the previous entry (an entry before it was removed, inserted or reordered)');
    if (auditEntryHash(e) !== e.hash) return bad('content does not match its hash (altered)');
    if (e.storedData !== undefined && JSON.stringify(e.data) !== e.storedData) {
      return bad('stored data is not the JSON its hash covers (a duplicate key or an edit the hash does not see)');
    }
    prevHash = e.hash;
    expectedSeq += 1;
    count += 1;
  }
  return { ok: true, entries: count, headHash: count > 0 ? prevHash : null };
}
