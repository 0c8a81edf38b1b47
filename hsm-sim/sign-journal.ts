/**
 * The device's own record of what it signed (SPEC rules 2 and 5), from which it computes the pool's
 * velocity windows rather than trusting the gateway's usage: every signature it released, by pool,
 * chain and digest, with the asset, amount and time (the device's clock). A second SIGN of the same
 * transaction returns the recorded signatures and counts once; a different transaction that spends
 * what a signed one spends (the same Ethereum nonce, a same Bitcoin output) is refused unless its
 * approvals name the signed request as the one it replaces, and the replaced amount then stops counting.
 * The records live in the sealed state and its journal (hsm-sim/sealed-state.ts).
 *
 * A replacement stops the replaced amount counting, so what it names is checked, not believed (an
 * approver cannot check it from the message): it must spend something the replaced transaction spent
 * (else both are valid on chain), everything it spends that another signed transaction spent must be
 * the replaced one's, the replaced request must not be replaced already (replace its replacement), and
 * a request yields one transaction (another under its id could be replaced away along with it).
 */
import type { WindowUsage } from '../common/policy/evaluate.js';
import type { SignedRecord } from './sealed-state.js';

/** The key of a transaction in the journal. */
export function transactionKey(poolId: string, chain: string, digestHex: string): string {
  return `${poolId} ${chain} ${digestHex}`;
}

export class SignJournal {
  private readonly records = new Map<string, SignedRecord>();
  /** Live (not replaced) records per pool and asset, in signing order. */
  private readonly byAsset = new Map<string, SignedRecord[]>();
  /** The transaction key that spends each `<pool> <chain> <spend>`. */
  private readonly bySpend = new Map<string, string>();
  /** `<pool> <requestId>` of requests a signed replacement replaced, and the request that replaced each. */
  private readonly replaced = new Map<string, string>();
  /** The transaction key each `<pool> <requestId>` signed. */
  private readonly byRequest = new Map<string, string>();

  constructor(signed: Readonly<Record<string, SignedRecord>> | undefined) {
    for (const [key, record] of Object.entries(signed ?? {}).sort(([, a], [, b]) => a.at - b.at)) this.add(key, record);
  }

  get(key: string): SignedRecord | undefined {
    return this.records.get(key);
  }

  /**
   * Why sign-once refuses to sign the transaction `key` for `requestId` (replacing `replaces`, or
   * null), spending `spends`; null when it may be signed. See the module comment.
   */
  signOnceRefusal(poolId: string, chain: string, key: string, spends: readonly string[], requestId: string, replaces: string | null): string | null {
    const ofRequest = this.byRequest.get(`${poolId} ${requestId}`);
    if (ofRequest !== undefined && ofRequest !== key) {
      return `sign_once: request ${requestId} already signed another transaction; a request yields one transaction (a new request, or its approved replacement, signs another)`;
    }
    const conflicts = new Set<SignedRecord>();
    for (const spend of spends) {
      const other = this.bySpend.get(`${poolId} ${chain} ${spend}`);
      const record = other !== undefined && other !== key ? this.records.get(other) : undefined;
      if (record !== undefined) conflicts.add(record);
    }
    for (const record of conflicts) {
      if (record.requestId !== replaces) {
        return `sign_once: request ${record.requestId} already signed a transaction spending what this one spends; only its approved replacement (approvals naming "replaces": "${record.requestId}") is signed`;
      }
    }
    if (replaces === null) return null;
    if (replaces === requestId) return `not_a_replacement: request ${requestId} names itself as the request it replaces`;
    if (conflicts.size === 0) {
      return `not_a_replacement: this transaction spends nothing that request ${replaces} spent (another nonce or other outputs), so both would be valid; a replacement spends what it replaces`;
    }
    const by = this.replaced.get(`${poolId} ${replaces}`);
    if (by !== undefined) return `not_a_replacement: request ${replaces} was replaced already by ${by}; only the live replacement is replaced again`;
    return null;
  }

  /** The amounts of `asset` signed for the pool within each window ending `now`, replaced requests left out. */
  usage(poolId: string, asset: string, windows: readonly { readonly window: string; readonly windowMs: number }[], now: number): WindowUsage[] {
    const records = this.byAsset.get(`${poolId} ${asset}`) ?? [];
    const committed = windows.map(() => 0n);
    const longest = Math.max(0, ...windows.map((w) => w.windowMs));
    // Newest first, in signing order: what was signed before the longest window counts in none.
    for (let i = records.length - 1; i >= 0; i--) {
      const r = records[i] as SignedRecord;
      if (r.at <= now - longest) break;
      if (this.replaced.has(`${poolId} ${r.requestId}`)) continue;
      windows.forEach((w, j) => {
        if (r.at > now - w.windowMs) committed[j] = (committed[j] as bigint) + BigInt(r.amount);
      });
    }
    return windows.map((w, j) => ({ window: w.window, windowMs: w.windowMs, committed: committed[j] as bigint }));
  }

  add(key: string, record: SignedRecord): void {
    this.records.set(key, record);
    const assetKey = `${record.poolId} ${record.asset}`;
    const list = this.byAsset.get(assetKey);
    if (list) list.push(record);
    else this.byAsset.set(assetKey, [record]);
    for (const spend of record.spends) this.bySpend.set(`${record.poolId} ${record.chain} ${spend}`, key);
    if (record.replaces !== undefined) this.replaced.set(`${record.poolId} ${record.replaces}`, record.requestId);
    const request = `${record.poolId} ${record.requestId}`;
    if (!this.byRequest.has(request)) this.byRequest.set(request, key);
  }
}
