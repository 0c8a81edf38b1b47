/**
 * A compromised gateway against the real simulator's own policy and governance (SPEC rule 2, sections
 * 4 and 9): it holds the PIN and can get genuine approvals for what it asks, and it skips every check
 * of its own. The device holds the pool's policy and refuses, with its own status and no signature:
 * a transaction above the quorum tier its approvals reach, over the per-transaction maximum, to an
 * address off the allowlist, still cooling off, or of another pool, over the fee cap, over a velocity
 * window reached by many small transfers, before its time lock, a second transaction on a signed
 * nonce, anything on a frozen pool; and, for governance, a change applied under approvals of another
 * action, a replayed change, a change made before another one was applied, an unfreeze without the
 * quorum. The honest requests sign, and ethers (code we did not write) recovers the pool's address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Signature, Transaction, computeAddress, getAddress } from 'ethers';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { canonicalize } from 'json-canonicalize';
import { buildEthereumTransfer } from '../../../common/chains/ethereum/transaction.js';
import {
  memberSummaries,
  type PoolGovernanceMessage,
  type PoolSummary,
} from '../../../common/governance-message.js';
import { policyHash } from '../../../common/policy/document.js';
import type { PolicyDocument } from '../../../common/policy/policy.js';
import {
  decodeListKeysResult,
  encodeSignCommand,
  decodeTimelockedFields,
  encodeFreezePoolCommand,
  encodeGovernPoolCommand,
  Opcode,
  Status,
  STATUS_NAMES,
  type ApprovalRecord,
  type KeyRecord,
} from '../../../common/sim-protocol.js';
import { createSimDevice } from '../../../src/devices/sim/client.js';
import { APPROVERS, ETH_DESTINATION, ETH_FEES, SEPOLIA, approval, messageFor, type TestTransaction } from '../../hsm-sim/fixtures.js';
import { openRawSimLink, type RawSimLink } from '../../helpers/raw-sim-link.js';
import { startSim, type SimProcess } from '../../helpers/sim-process.js';
import { openPolicy } from '../../helpers/open-policy.js';
import { expectRefused, expectSigned } from './device-under-attack.js';
import { adminApproval, poolGovernanceMessage, readGovernanceState, type HeldState } from '../../helpers/governance-fixtures.js';
import { ed25519 } from '@noble/curves/ed25519.js';

const ETH = 10n ** 18n;
const ATTACKER = getAddress('0x' + 'ba'.repeat(20));
/** Allowlisted at the ceremony, usable only a day after. */
const COOLING = getAddress('0x' + 'c0'.repeat(20));

let sim: SimProcess;
let link: RawSimLink;
let deviceId: string;
let poolKey: KeyRecord;
let otherPoolAddress: string;

const members = (ids: string[]) => APPROVERS.filter((a) => ids.includes(a.id)).map((a) => ({ id: a.id, publicKey: hexToBytes(a.publicKey) }));

function poolPolicy(): PolicyDocument {
  return {
    quorum: [{ upTo: { ETH: ETH.toString() }, approvals: 2 }, { approvals: 3 }],
    assets: { ETH: { maxPerTx: (5n * ETH).toString(), limits: [{ window: '1h', max: (8n * ETH).toString() }] } },
    allowlist: [
      { address: ETH_DESTINATION, label: 'exchange' },
      { address: COOLING, label: 'new', addedAt: new Date().toISOString() },
      { address: otherPoolAddress, label: 'another pool of this device' },
    ],
    newAddressCoolingOff: '24h',
    timelock: { above: { ETH: (3n * ETH).toString() }, delay: '1h' },
    maxFee: { ETH: (10n ** 15n).toString() },
  };
}

beforeAll(async () => {
  sim = await startSim();
  const client = createSimDevice({ url: sim.url, pin: sim.pin });
  try {
    await client.enrollGovernance(APPROVERS, 2);
    deviceId = (await client.info()).id;
  } finally {
    await client.close();
  }
  link = await openRawSimLink(sim.port, sim.pin);
  await link.enrollPool('pool-q', members(['bob', 'carol']), 2, openPolicy(2));
  otherPoolAddress = computeAddress('0x' + bytesToHex((await link.generateKey('pool-q', SEPOLIA, 'secp256k1')).publicKey));
  await link.enrollPool('pool-p', members(['alice', 'bob', 'carol']), 2, poolPolicy());
  poolKey = await link.generateKey('pool-p', SEPOLIA, 'secp256k1');
}, 60_000);

afterAll(async () => {
  link?.close();
  await sim?.stop();
});

function transfer(nonce: bigint, amount: bigint, to = ETH_DESTINATION, fees: typeof ETH_FEES = ETH_FEES): TestTransaction {
  const p = buildEthereumTransfer({ chainId: 11155111n, nonce, gasLimit: 21_000n, fees, intent: { asset: 'ETH', recipient: to, amount } });
  return { chain: SEPOLIA, unsignedTx: p.unsignedTx, asset: 'ETH', amount, to: p.transfer.intent.recipient, maxFee: p.maxFee, digest: p.digest };
}

/** Genuine approvals by `who` of an honest message about `tx` for pool-p. */
function approvalsOf(tx: TestTransaction, who: readonly string[], over: Parameters<typeof messageFor>[1] = {}): ApprovalRecord[] {
  const m = messageFor(tx, { pool: 'pool-p', ...over });
  return who.map((w) => approval(w, m));
}

/** Genuine approvals by bob and carol of one honest message about `tx` for pool-q. */
function qApprovals(tx: TestTransaction): ApprovalRecord[] {
  const m = messageFor(tx, { pool: 'pool-q' });
  return ['bob', 'carol'].map((w) => approval(w, m));
}

const sign = (tx: TestTransaction, approvals: readonly ApprovalRecord[], key: KeyRecord = poolKey, poolId = 'pool-p') =>
  link.sign({ handle: key.handle, poolId, unsignedTx: tx.unsignedTx, approvals });

function recovered(tx: TestTransaction, signature: Uint8Array, recovery: 0 | 1 | null): string {
  const t = Transaction.from(tx.unsignedTx);
  t.signature = Signature.from({ r: '0x' + bytesToHex(signature.subarray(0, 32)), s: '0x' + bytesToHex(signature.subarray(32)), yParity: recovery ?? 0 });
  return t.from as string;
}

const governanceState = (poolId: string) => readGovernanceState(link, poolId);
const governanceMessage = (poolId: string, action: PoolGovernanceMessage['action'], change: unknown, state: HeldState, after: PoolSummary): string =>
  poolGovernanceMessage({ device: deviceId, poolId, action, change, state, after });

async function govern(poolId: string, change: unknown, approvals: readonly ApprovalRecord[]) {
  return link.request(Opcode.GOVERN_POOL, encodeGovernPoolCommand({ poolId, change: canonicalize(change), approvals }));
}

describe('the device enforces the pool policy it holds', () => {
  it('when an honest small withdrawal carries two approvals, then the device signs and ethers recovers the pool address (the positive control)', async () => {
    const tx = transfer(0n, ETH / 2n);
    const result = expectSigned(await sign(tx, approvalsOf(tx, ['alice', 'bob'])));
    expect(recovered(tx, result.signatures[0]!, result.recoveries[0]!)).toBe(computeAddress('0x' + bytesToHex(poolKey.publicKey)));
  });

  it('when 2 ETH carries only the small tier\'s two approvals, then QUORUM_REFUSED names the tier; with three it signs', async () => {
    const tx = transfer(1n, 2n * ETH);
    expectRefused(await sign(tx, approvalsOf(tx, ['alice', 'bob'])), Status.QUORUM_REFUSED, /needs at least 3 for 2000000000000000000 ETH/);
    expectSigned(await sign(tx, approvalsOf(tx, ['alice', 'bob', 'carol'])));
  });

  it('when the amount is over the per-transaction maximum, then POLICY_REFUSED over_max_per_tx, whatever the approvals', async () => {
    const tx = transfer(2n, 6n * ETH);
    expectRefused(await sign(tx, approvalsOf(tx, ['alice', 'bob', 'carol'])), Status.POLICY_REFUSED, /over_max_per_tx/);
  });

  it('when the destination is off the allowlist, still cooling off, or another pool\'s address, then POLICY_REFUSED with the rule', async () => {
    const away = transfer(2n, ETH / 10n, ATTACKER);
    expectRefused(await sign(away, approvalsOf(away, ['alice', 'bob'])), Status.POLICY_REFUSED, /destination_not_allowlisted/);
    const cooling = transfer(2n, ETH / 10n, COOLING);
    expectRefused(await sign(cooling, approvalsOf(cooling, ['alice', 'bob'])), Status.POLICY_REFUSED, /destination_cooling_off/);
    // Allowlisted, but it belongs to pool-q: assets of one pool never pay into another (no internalTransfers).
    const commingled = transfer(2n, ETH / 10n, otherPoolAddress);
    expectRefused(await sign(commingled, approvalsOf(commingled, ['alice', 'bob'])), Status.POLICY_REFUSED, /commingling/);
  });

  it('when the transaction can pay more fees than the cap, then POLICY_REFUSED fee_over_cap', async () => {
    const tx = transfer(2n, ETH / 10n, ETH_DESTINATION, { kind: 'eip1559', maxFeePerGas: 100_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n } as unknown as typeof ETH_FEES);
    expectRefused(await sign(tx, approvalsOf(tx, ['alice', 'bob'])), Status.POLICY_REFUSED, /fee_over_cap/);
  });

  it('when a time-locked amount comes with its full quorum, then TIMELOCKED says when, counted from the first time the device saw that quorum', async () => {
    const tx = transfer(2n, 4n * ETH);
    const approvals = approvalsOf(tx, ['alice', 'bob', 'carol'], { timelock: '1h' });
    const before = Date.now();
    expectRefused(await sign(tx, approvals), Status.TIMELOCKED, /time-locked/);
    // Asked again, the device answers the same time: its lock runs from the first complete quorum it saw.
    const again = await link.request(Opcode.SIGN, encodeSignCommand({ handle: poolKey.handle, poolId: 'pool-p', unsignedTx: tx.unsignedTx, approvals }));
    expect(STATUS_NAMES[again.status]).toBe('TIMELOCKED');
    const { until } = decodeTimelockedFields(again.fields);
    expect(until).toBeGreaterThanOrEqual(before + 3_600_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 3_600_000);
  });

  it('when many small transfers each within the tier add up over the hourly window, then the one that crosses it is POLICY_REFUSED velocity_exceeded', async () => {
    // 2.5 ETH signed so far in the hour: five 1 ETH transfers reach 7.5, a sixth would be 8.5 > 8.
    for (let nonce = 2n; nonce < 7n; nonce++) {
      const tx = transfer(nonce, ETH);
      expectSigned(await sign(tx, approvalsOf(tx, ['alice', 'bob'])));
    }
    const over = transfer(7n, ETH);
    expectRefused(await sign(over, approvalsOf(over, ['alice', 'bob'])), Status.POLICY_REFUSED, /velocity_exceeded/);
    const fits = transfer(7n, ETH / 2n);
    expectSigned(await sign(fits, approvalsOf(fits, ['alice', 'bob'])));
  });

  it('when a signed transaction is sent again, then the same signature comes back and counts once', async () => {
    // The window is full (8 ETH): a second count of the repeat would be refused.
    const tx = transfer(0n, ETH / 2n);
    const approvals = approvalsOf(tx, ['alice', 'bob']);
    const first = expectSigned(await sign(tx, approvals));
    const second = expectSigned(await sign(tx, approvalsOf(tx, ['bob', 'carol'])));
    expect(bytesToHex(second.signatures[0]!)).toBe(bytesToHex(first.signatures[0]!));
    const oneWei = transfer(8n, 1n);
    expectRefused(await sign(oneWei, approvalsOf(oneWei, ['alice', 'bob'])), Status.POLICY_REFUSED, /velocity_exceeded/);
  });
});

describe('freeze, sign-once and governance in the device', () => {
  it('when one admin\'s signed freeze message arrives, then the pool is frozen at once and SIGN is FROZEN until the admin quorum unfreezes it; an outsider\'s freeze is refused; the nonce signed then is spent', async () => {
    const state = await governanceState('pool-q');
    const freeze = governanceMessage('pool-q', 'freeze', { action: 'freeze' }, state, state.summary);
    const outsider = ed25519.utils.randomSecretKey();
    const forged: ApprovalRecord = { publicKey: ed25519.getPublicKey(outsider), message: freeze, signature: ed25519.sign(new TextEncoder().encode(freeze), outsider) };
    expect(STATUS_NAMES[(await link.request(Opcode.FREEZE_POOL, encodeFreezePoolCommand({ poolId: 'pool-q', approvals: [forged] }))).status]).toBe('QUORUM_REFUSED');
    const qKey = await keyOf('pool-q');
    const tx = transfer(0n, 1000n);
    const approvals = qApprovals(tx);
    expect(STATUS_NAMES[(await link.request(Opcode.FREEZE_POOL, encodeFreezePoolCommand({ poolId: 'pool-q', approvals: [adminApproval('alice', freeze)] }))).status]).toBe('OK');
    expectRefused(await sign(tx, approvals, qKey, 'pool-q'), Status.FROZEN, /frozen/);
    // One admin cannot unfreeze: that needs the quorum.
    // The freeze counted in the pool's sequence: an unfreeze made before it is stale; the admins approve one made after it.
    const early = governanceMessage('pool-q', 'unfreeze', { action: 'unfreeze' }, state, state.summary);
    expect(STATUS_NAMES[(await govern('pool-q', { action: 'unfreeze' }, [adminApproval('alice', early), adminApproval('bob', early)])).status]).toBe('STALE_GOVERNANCE');
    const frozenState = await governanceState('pool-q');
    expect(frozenState.sequence).toBe(state.sequence + 1);
    const unfreeze = governanceMessage('pool-q', 'unfreeze', { action: 'unfreeze' }, frozenState, frozenState.summary);
    const alone = await govern('pool-q', { action: 'unfreeze' }, [adminApproval('alice', unfreeze)]);
    expect(STATUS_NAMES[alone.status]).toBe('QUORUM_REFUSED');
    const both = await govern('pool-q', { action: 'unfreeze' }, [adminApproval('alice', unfreeze), adminApproval('bob', unfreeze)]);
    expect(STATUS_NAMES[both.status]).toBe('OK');
    const signed = await sign(tx, approvals, qKey, 'pool-q');
    expect(signed.message).toBeNull();
    expectSigned(signed);
    // Its nonce is spent: another transaction on it is refused, however well approved.
    const sameNonce = transfer(0n, 999n);
    expectRefused(await sign(sameNonce, qApprovals(sameNonce), qKey, 'pool-q'), Status.POLICY_REFUSED, /sign_once/);
  });

  it('when admins approved a policy change, then their approvals cannot change the approvers; applied once, a replay and a proposal made before it are STALE_GOVERNANCE', async () => {
    const state = await governanceState('pool-q');
    const stricter: PolicyDocument = { ...openPolicy(2), assets: { ETH: { maxPerTx: '1000' } } };
    const looser: PolicyDocument = { ...openPolicy(2), assets: { ETH: {}, BTC: {} } };
    const after = (doc: PolicyDocument): PoolSummary => ({ ...state.summary, policy: policyHash(doc), policyVersion: state.summary.policyVersion + 1 });
    const first = governanceMessage('pool-q', 'policy', { action: 'policy', policy: stricter }, state, after(stricter));
    const second = governanceMessage('pool-q', 'policy', { action: 'policy', policy: looser }, state, after(looser));
    const approvals = [adminApproval('alice', first), adminApproval('bob', first)];

    // The attacker's own key as an approver, under approvals of the policy change: refused.
    const mallory = { id: 'mallory', publicKey: bytesToHex(ed25519.getPublicKey(ed25519.utils.randomSecretKey())) };
    const rebind = await govern('pool-q', { action: 'approvers', add: [mallory], remove: ['carol'] }, approvals);
    expect(STATUS_NAMES[rebind.status]).toBe('QUORUM_REFUSED');
    // The policy document swapped under the same approvals: refused.
    expect(STATUS_NAMES[(await govern('pool-q', { action: 'policy', policy: looser }, approvals)).status]).toBe('QUORUM_REFUSED');

    expect(STATUS_NAMES[(await govern('pool-q', { action: 'policy', policy: stricter }, approvals)).status]).toBe('OK');
    const now = await governanceState('pool-q');
    expect(now).toEqual({ summary: after(stricter), sequence: state.sequence + 1 });
    expect(now.summary.approvers).toEqual(memberSummaries(APPROVERS.filter((a) => a.id !== 'alice')));

    const replay = await govern('pool-q', { action: 'policy', policy: stricter }, approvals);
    expect(STATUS_NAMES[replay.status]).toBe('STALE_GOVERNANCE');
    const stale = await govern('pool-q', { action: 'policy', policy: looser }, [adminApproval('alice', second), adminApproval('carol', second)]);
    expect(STATUS_NAMES[stale.status]).toBe('STALE_GOVERNANCE');
    expect(await governanceState('pool-q')).toEqual(now);

    // The stricter policy now holds in the device: 1001 wei is over its maximum.
    const tx = transfer(1n, 1001n);
    expectRefused(await sign(tx, qApprovals(tx), await keyOf('pool-q'), 'pool-q'), Status.POLICY_REFUSED, /over_max_per_tx/);
  });

  it('when pool-p is frozen by an admin, then even its honest withdrawal is FROZEN', async () => {
    const state = await governanceState('pool-p');
    const freeze = governanceMessage('pool-p', 'freeze', { action: 'freeze' }, state, state.summary);
    expect(STATUS_NAMES[(await link.request(Opcode.FREEZE_POOL, encodeFreezePoolCommand({ poolId: 'pool-p', approvals: [adminApproval('carol', freeze)] }))).status]).toBe('OK');
    const tx = transfer(9n, 1n);
    expectRefused(await sign(tx, approvalsOf(tx, ['alice', 'bob'])), Status.FROZEN);
  });
});

async function keyOf(poolId: string): Promise<KeyRecord> {
  const answer = await link.request(Opcode.LIST_KEYS);
  const key = decodeListKeysResult(answer.fields).find((k) => k.poolId === poolId);
  if (!key) throw new Error(`no key of ${poolId}`);
  return key;
}
