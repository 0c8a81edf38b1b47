/**
 * Use case: release the signature of an approved withdrawal (SPEC rules 2, 5, 6; ARCHITECTURE
 * "use cases read like the story").
 *
 * claim (one transaction: pool not frozen, not expired, time lock passed, approved -> signing, audit;
 * fail closed: no audit, no signature) -> device.sign with the quorum evidence (never retried) ->
 * assemble and verify the signature recovers to the pool's address -> one transaction: signing ->
 * signed with its audit entry. The signed transaction is only served once that commit succeeded.
 *
 * A device that holds the pool frozen (FROZEN) is not a failure: the request goes back to approved or
 * time-locked until the pool is unfrozen.
 *
 * A request left in `signing` (crash, device timeout) is resumed by signing the same digest again:
 * the transaction is the same, and the simulator's ECDSA is deterministic (RFC 6979), so no second,
 * different transaction can come out of it.
 */
import { createHash } from 'node:crypto';
import { bytesToHex } from '@noble/hashes/utils.js';
import { parseChainId } from '../../common/chain-id.js';
import { isCustodyError, StoreError } from '../../common/errors.js';
import type { PoolKey } from '../domain/pool.js';
import type { Reason, Withdrawal } from '../domain/withdrawal.js';
import type { ApprovalEvidence, DeviceSignature } from '../devices/signing-device.js';
import { signingPlan, type SigningPlan } from '../chains/payload.js';
import type { StoreReads, StoreTx } from '../store/store.js';
import { requirePool, requireWithdrawal, type ServiceContext } from './context.js';

/** A request claimed for signing (state `signing`, audited), with what the device needs. */
export interface Claim {
  readonly withdrawal: Withdrawal;
  readonly key: PoolKey;
  readonly evidence: readonly ApprovalEvidence[];
}

/** The outcome of trying to claim: a claim, or the request as it stays (frozen, time-locked, expired…). */
export type ClaimResult = Claim | { readonly withdrawal: Withdrawal };

export function isClaim(result: ClaimResult): result is Claim {
  return 'key' in result;
}

/**
 * Releases under way in this process: one device call per request at a time. A second caller (the
 * final approval and the due-work timer can meet here) waits for the release under way and gets its
 * outcome, instead of starting another.
 */
const inFlight = new Map<string, Promise<Withdrawal>>();

export function releaseSignature(ctx: ServiceContext, withdrawalId: string): Promise<Withdrawal> {
  return releaseOnce(withdrawalId, async () => {
    const claim = await ctx.store.transaction(async (tx) => claimInTx(ctx, tx, await requireWithdrawal(tx, withdrawalId)));
    return isClaim(claim) ? signClaimed(ctx, claim) : claim.withdrawal;
  });
}

/**
 * The rest of the release of a request claimed in a transaction that has committed (the final
 * approval claims in its own transaction, one durable commit fewer): the device call and the record.
 */
export function releaseClaimed(ctx: ServiceContext, claim: Claim): Promise<Withdrawal> {
  return releaseOnce(claim.withdrawal.id, () => signClaimed(ctx, claim));
}

function releaseOnce(withdrawalId: string, release: () => Promise<Withdrawal>): Promise<Withdrawal> {
  const underWay = inFlight.get(withdrawalId);
  if (underWay) return underWay;
  const started = release().finally(() => inFlight.delete(withdrawalId));
  inFlight.set(withdrawalId, started);
  return started;
}

/**
 * Claims `w` for signing inside `tx`: a request not `approved`, `timelocked` or `signing` stays as it
 * is; so does one of a frozen pool; one past its expiry expires, one before its time lock is
 * time-locked; otherwise it moves to `signing` with its audit entry (fail closed: if that entry cannot
 * be written, the transaction fails and nothing is signed).
 */
export async function claimInTx(ctx: ServiceContext, tx: StoreTx, w: Withdrawal): Promise<ClaimResult> {
  if (w.state !== 'approved' && w.state !== 'timelocked' && w.state !== 'signing') return { withdrawal: w };
  const pool = await requirePool(tx, w.poolId);
  const now = ctx.now();
  if (pool.status === 'frozen') return { withdrawal: w };
  if (w.state !== 'signing' && w.expiresAt !== null && now > w.expiresAt) {
    const reasons = [{ code: 'expired', message: 'the request expired before it could be signed' }];
    const expired = await tx.updateWithdrawal(w.id, w.state, { state: 'expired', reasons }, now);
    await tx.appendAudit({ type: 'withdrawal.expired', actor: 'system', subject: `withdrawal:${w.id}`, data: {} }, now);
    return { withdrawal: expired };
  }
  if (w.state !== 'signing' && w.notBefore !== null && now < w.notBefore) {
    if (w.state === 'timelocked') return { withdrawal: w };
    const locked = await tx.updateWithdrawal(w.id, 'approved', { state: 'timelocked' }, now);
    await tx.appendAudit(
      { type: 'withdrawal.timelocked', actor: 'system', subject: `withdrawal:${w.id}`, data: { notBefore: new Date(w.notBefore).toISOString() } },
      now,
    );
    return { withdrawal: locked };
  }
  const { key, evidence } = await signingEvidence(tx, w, pool.approvers);
  const signing = w.state === 'signing' ? w : await tx.updateWithdrawal(w.id, w.state, { state: 'signing' }, now);
  await tx.appendAudit(
    {
      type: w.state === 'signing' ? 'withdrawal.signing_resumed' : 'withdrawal.signing',
      actor: 'system',
      subject: `withdrawal:${w.id}`,
      data: { device: key.device, handle: key.handle, digest: w.digest, approvals: evidence.length },
    },
    now,
  );
  return { withdrawal: signing, key, evidence };
}

/**
 * The pool key and the evidence the device counts: approvals of the published message (not of a
 * message an upgrade replaced) by current approvers of the pool (a removed approver's old vote would
 * make a valid quorum fail in the device).
 */
async function signingEvidence(tx: StoreReads, w: Withdrawal, approvers: readonly string[]): Promise<{ key: PoolKey; evidence: ApprovalEvidence[] }> {
  const key = await tx.getKey(w.poolId, w.chain);
  if (!key) throw new StoreError('key_missing', `pool ${w.poolId} has no key on ${w.chain}`);
  const evidence: ApprovalEvidence[] = [];
  for (const a of await tx.approvalsOf(w.id)) {
    if (a.decision !== 'approve' || a.message !== w.approvalMessage || !approvers.includes(a.approverId)) continue;
    const approver = await tx.getApprover(a.approverId);
    if (approver) evidence.push({ publicKey: approver.publicKey, message: a.message, signature: a.signature });
  }
  return { key, evidence };
}

/**
 * A request just time-locked: a device that holds the time lock itself starts it from the first time
 * it sees the complete quorum, so it is shown the quorum now and answers when it will sign; the
 * request waits for the later of the two times. Should the device sign at once (it holds no such lock
 * for this request), the signature is discarded: the release at the end of the gateway's lock asks
 * again and gets the same one, counted once by the device. Nothing here changes the outcome of a
 * failure: the release at the end of the lock tries again.
 */
export async function announceQuorum(ctx: ServiceContext, withdrawalId: string): Promise<Withdrawal> {
  const ready = await ctx.store.read(async (r) => {
    const w = await requireWithdrawal(r, withdrawalId);
    if (w.state !== 'timelocked') return null;
    const pool = await requirePool(r, w.poolId);
    return { w, ...(await signingEvidence(r, w, pool.approvers)) };
  });
  if (ready === null) return ctx.store.read((r) => requireWithdrawal(r, withdrawalId));
  const { w, key, evidence } = ready;
  const device = ctx.devices.forKey(key);
  try {
    if (!(await device.info()).enforces.includes('timelock')) return w;
    const plan = signingPlan(parseChainId(w.chain), w.unsignedTx, key);
    await device.sign({ handle: key.handle, poolId: w.poolId, scheme: plan.scheme, payload: plan.payload, digest: plan.digest, approvals: evidence, transaction: { chain: w.chain, unsignedTx: w.unsignedTx } });
    ctx.log.warn({ withdrawal: w.id }, 'the device holds no time lock for this request; its signature is asked for again when the gateway\'s lock ends');
    return w;
  } catch (error) {
    const until = deviceTimelock(error);
    if (until === null) {
      ctx.log.warn({ withdrawal: w.id, err: error instanceof Error ? error.message : String(error) }, 'the device was not shown the time-locked quorum; the release at the end of the lock tries again');
      return w;
    }
    if (w.notBefore !== null && until <= w.notBefore) return w;
    return ctx.store.transaction(async (tx) => {
      const now = ctx.now();
      const later = await tx.updateWithdrawal(w.id, 'timelocked', { state: 'timelocked', notBefore: until }, now);
      await tx.appendAudit({ type: 'withdrawal.timelocked', actor: 'system', subject: `withdrawal:${w.id}`, data: { notBefore: new Date(until).toISOString(), by: 'device' } }, now);
      return later;
    });
  }
}

/** When the device will sign, if the error is its time lock. */
function deviceTimelock(error: unknown): number | null {
  if (!isCustodyError(error) || error.code !== 'device_timelocked') return null;
  const until = error.details?.until;
  return typeof until === 'number' && Number.isFinite(until) ? until : null;
}

/** Device refusals that will not change on a second try; anything else leaves the outcome unknown. */
function isDefiniteRefusal(error: unknown): boolean {
  return isCustodyError(error) && ['forbidden', 'invalid', 'not_found', 'conflict', 'policy'].includes(error.kind);
}

async function signClaimed(ctx: ServiceContext, claim: Claim): Promise<Withdrawal> {
  const { withdrawal: w, key } = claim;
  const chain = parseChainId(w.chain);
  // Decode the stored transaction again (once, for signing and for assembly): the device signs what it
  // contains, which the digest commits to.
  let plan: SigningPlan;
  try {
    plan = signingPlan(chain, w.unsignedTx, key);
  } catch (error) {
    // Deterministic: the same stored transaction fails the same way every time, so it is never resumed.
    const message = error instanceof Error ? error.message : String(error);
    return failSigning(ctx, w.id, { code: isCustodyError(error) ? error.code : 'undecodable_transaction', message: `the stored transaction cannot be signed: ${message}` });
  }
  const { payload, digest, scheme } = plan;
  if (bytesToHex(digest) !== w.digest) {
    return failSigning(ctx, w.id, { code: 'digest_mismatch', message: 'the stored transaction no longer matches the approved digest' });
  }
  let signature: DeviceSignature;
  try {
    // Inside the try: an unconfigured or unreachable device leaves the outcome to resumption.
    signature = await ctx.devices.forKey(key).sign({
      handle: key.handle,
      poolId: w.poolId,
      scheme,
      payload,
      digest,
      approvals: claim.evidence,
      transaction: { chain: w.chain, unsignedTx: w.unsignedTx },
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const until = deviceTimelock(error);
    if (until !== null) {
      // The device's own time lock ends later than the gateway's (it first saw the quorum later): wait for it.
      return ctx.store.transaction(async (tx) => {
        const now = ctx.now();
        const later = await tx.updateWithdrawal(w.id, 'signing', { state: 'timelocked', notBefore: until, reasons: [] }, now);
        await tx.appendAudit({ type: 'withdrawal.timelocked', actor: 'system', subject: `withdrawal:${w.id}`, data: { notBefore: new Date(until).toISOString(), by: 'device' } }, now);
        return later;
      });
    }
    if (isCustodyError(error) && error.code === 'device_frozen') return holdWhileFrozen(ctx, w, message);
    if (!isDefiniteRefusal(error)) {
      ctx.log.warn({ withdrawal: w.id, err: message }, 'device did not confirm the signature; the request stays in signing and will be resumed');
      return recordSigningReason(ctx, w.id, { code: 'device_unavailable', message: `the device did not answer (${message}); signing will be resumed` });
    }
    return failSigning(ctx, w.id, { code: isCustodyError(error) ? error.code : 'device_refused', message: `the device refused to sign: ${message}` });
  }

  let signed: { signedTx: string; txHash: string };
  try {
    signed = plan.assemble(signature);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    ctx.log.error({ withdrawal: w.id, err: message }, 'device signature does not verify against the pool key');
    return failSigning(ctx, w.id, { code: 'signature_mismatch', message: 'the device returned a signature that does not verify against the pool key' });
  }

  const result = await ctx.store.transaction(async (tx) => {
    const now = ctx.now();
    // The amount leaves now: it counts in every velocity window that contains its release.
    const committedAt = Math.max(w.committedAt ?? now, now);
    const done = await tx.updateWithdrawal(w.id, 'signing', { state: 'signed', signedTx: signed.signedTx, txHash: signed.txHash, reasons: [], committedAt }, now);
    await tx.appendAudit(
      {
        type: 'withdrawal.signed',
        actor: 'system',
        subject: `withdrawal:${w.id}`,
        data: { txHash: signed.txHash, signedTxSha256: createHash('sha256').update(signed.signedTx).digest('hex'), device: key.device },
      },
      now,
    );
    return done;
  });
  ctx.log.info({ withdrawal: w.id, txHash: signed.txHash }, 'withdrawal signed');
  return result;
}

/**
 * The device holds the pool frozen (an admin's signed freeze reached it, perhaps while this request was
 * being claimed: the freeze wins). Not a failure: the request goes back to approved (time-locked if it
 * has a time lock) and is signed once the admin quorum unfreezes the pool, device first. The store's
 * pool is frozen too if it is not, so the gateway stops asking.
 */
async function holdWhileFrozen(ctx: ServiceContext, w: Withdrawal, deviceMessage: string): Promise<Withdrawal> {
  const held = await ctx.store.transaction(async (tx) => {
    const now = ctx.now();
    const state = w.notBefore !== null ? 'timelocked' : 'approved';
    const reasons = [{ code: 'pool_frozen', message: `the device holds pool ${w.poolId} frozen; the request is signed once the admin quorum unfreezes it` }];
    const back = await tx.updateWithdrawal(w.id, 'signing', { state, reasons }, now);
    await tx.appendAudit({ type: 'withdrawal.held_frozen', actor: 'system', subject: `withdrawal:${w.id}`, data: { state, device: deviceMessage } }, now);
    const pool = await requirePool(tx, w.poolId);
    if (pool.status !== 'frozen') {
      await tx.setPoolStatus(pool.id, 'frozen');
      await tx.appendAudit({ type: 'pool.frozen', actor: 'system', subject: `pool:${pool.id}`, data: { reason: 'the device holds the pool frozen', by: 'device' } }, now);
    }
    return back;
  });
  ctx.log.warn({ withdrawal: w.id, pool: w.poolId }, 'the device holds the pool frozen; the request waits for the unfreeze');
  return held;
}

async function failSigning(ctx: ServiceContext, id: string, reason: Reason): Promise<Withdrawal> {
  return ctx.store.transaction(async (tx) => {
    const now = ctx.now();
    const failed = await tx.updateWithdrawal(id, 'signing', { state: 'failed', reasons: [reason] }, now);
    await tx.appendAudit({ type: 'withdrawal.failed', actor: 'system', subject: `withdrawal:${id}`, data: { reason } }, now);
    return failed;
  });
}

async function recordSigningReason(ctx: ServiceContext, id: string, reason: Reason): Promise<Withdrawal> {
  return ctx.store.transaction(async (tx) => tx.updateWithdrawal(id, 'signing', { state: 'signing', reasons: [reason] }, ctx.now()));
}
