/**
 * A pool for service-layer tests: a real SQLite file, a pool bound in the real simulator process
 * with alice and bob as its approvers, its Sepolia key, a requester `ops`, and a clock the test sets.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { withDecision } from '../../common/approval-message.js';
import { parseChainId, type ChainId } from '../../common/chain-id.js';
import { createDeviceSet } from '../../src/devices/device-set.js';
import type { SigningDevice } from '../../src/devices/signing-device.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { addressForKey } from '../../src/chains/addresses.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import type { ServiceContext } from '../../src/service/context.js';
import type { Withdrawal } from '../../src/domain/withdrawal.js';
import { submitWithdrawal } from '../../src/service/submit-withdrawal.js';
import { approveWithdrawal } from '../../src/service/approve-withdrawal.js';
import { ALLOWLISTED, APPROVER_SECRETS } from './gateway-stack.js';

export const SEPOLIA = 'eip155:11155111' as ChainId;
export const OPS = { id: 'p-ops', name: 'ops', role: 'requester' as const, tokenHash: 'h-ops', createdAt: 0 };

export async function servicePool(device: SigningDevice, poolId: string, policy: PolicyDocument, now: () => number): Promise<ServiceContext> {
  const store = openSqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'service-pool-')), 'custody.db') });
  const keys = ['alice', 'bob'].map((id) => ({ id, publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS[id] as string))) }));
  await device.enrollPool(poolId, keys, 2, policy);
  const key = await device.generateKey(poolId, SEPOLIA, 'secp256k1');
  await store.transaction(async (tx) => {
    await tx.insertPrincipal(OPS);
    for (const k of keys) await tx.insertApprover(k);
    await tx.insertPool({ id: poolId, owner: poolId, chains: [SEPOLIA], status: 'active', approvers: ['alice', 'bob'], policyVersion: 1, createdAt: 0 }, policy);
    await tx.insertKey({ poolId, chain: SEPOLIA, curve: 'secp256k1', publicKey: key.publicKey, address: addressForKey(parseChainId(SEPOLIA), key.publicKey), device: 'sim-test', handle: key.handle, ceremonyId: poolId, createdAt: 0 });
  });
  return { store, devices: createDeviceSet({ sim: () => device }), now, log: pino({ level: 'silent' }) };
}

/** `ops` asks for `amount` wei to the allowlisted address at `nonce`. */
export async function submitEth(ctx: ServiceContext, poolId: string, nonce: number, amount: bigint): Promise<Withdrawal> {
  const body = { pool: poolId, chain: SEPOLIA, asset: 'ETH', amount: amount.toString(), to: ALLOWLISTED, nonce: String(nonce), gasLimit: '21000', maxFeePerGas: '10', maxPriorityFeePerGas: '1' };
  return (await submitWithdrawal(ctx, OPS, body, null)).withdrawal;
}

/** `who` signs the request's published message with `decision` and posts it. */
export function voteAs(ctx: ServiceContext, w: Withdrawal, who: string, decision: 'approve' | 'reject' = 'approve'): Promise<Withdrawal> {
  const signature = bytesToHex(ed25519.sign(new TextEncoder().encode(withDecision(w.approvalMessage, decision)), hexToBytes(APPROVER_SECRETS[who] as string)));
  return approveWithdrawal(ctx, { id: `p-${who}`, name: who, role: 'approver', tokenHash: `h-${who}`, createdAt: 0 }, w.id, { decision, signature });
}
