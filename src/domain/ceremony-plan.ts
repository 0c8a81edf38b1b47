/**
 * The ceremony plan (SPEC sections 7 and 9; `examples/ceremony-plan.json` is accepted verbatim) and
 * the policy document inside it, parsed into domain values: amounts as bigints, durations in ms.
 * Errors name the JSON path at fault.
 *
 * An optional top-level `custodians` ([{id, publicKey: X25519 hex}], docs/backup.md) names who the
 * simulator's backups may be encrypted to; the ceremony enrols them in the device with the admins. A
 * plan without it enrols none: the device then makes no backup until the admin quorum enrols them.
 */
import { z } from 'zod';
import { hexToBytes } from '@noble/hashes/utils.js';
import { isValidApproverKey } from '../../common/approver-key.js';
import { CUSTODIAN_ID, MAX_CUSTODIANS, custodianKeyProblem, type CustodianEntry } from '../../common/device-changes.js';
import { ValidationError } from '../../common/errors.js';
import { parseChainId, type ChainId } from '../../common/chain-id.js';
import { APPROVER_ID, POOL_ID, type Approver } from './pool.js';
import type { Policy, PolicyDocument } from '../../common/policy/policy.js';
import { assertPolicyChains, duplicates, parsePolicyDocument, policyDocumentSchema, zodMessage } from '../../common/policy/document.js';

/** The key device backends a plan may name (SPEC section 9: the simulator, a Ledger, a PKCS#11 token). */
const planDevice = z.enum(['sim', 'ledger', 'pkcs11'], 'expected a device type: "sim", "ledger" or "pkcs11"');

const approverSchema = z.strictObject({
  id: z.string().regex(APPROVER_ID, 'expected an approver id (letters, digits, ".", "_", "-")'),
  publicKey: z.string().regex(/^(?:[0-9a-fA-F]{64}|0[23][0-9a-fA-F]{64})$/, 'expected a 32-byte Ed25519 public key, or a 33-byte compressed secp256k1 key of a hardware wallet (EIP-191), in hex'),
});

const custodianSchema = z.strictObject({
  id: z.string().regex(CUSTODIAN_ID, 'expected a custodian id (letters, digits, ".", "_", "-")'),
  publicKey: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected a 32-byte X25519 public key in hex (custody custodians keygen prints it)'),
});

export const ceremonyPlanSchema = z.strictObject({
  version: z.literal(1),
  device: planDevice,
  approvers: z.array(approverSchema).min(1),
  admins: z.array(z.string()).optional(),
  adminQuorum: z.number().int().min(1).optional(),
  custodians: z.array(custodianSchema).max(MAX_CUSTODIANS).optional(),
  pools: z
    .array(
      z.strictObject({
        id: z.string().regex(POOL_ID, 'expected a pool id (lowercase slug)'),
        owner: z.string().min(1).max(200),
        chains: z.array(z.string()).min(1),
        approvers: z.array(z.string()).min(1),
        device: planDevice.optional(),
        bitcoinAddressType: z.enum(['p2wpkh', 'p2tr']).optional(),
        policy: policyDocumentSchema,
      }),
    )
    .min(1),
});

export interface PlannedPool {
  readonly id: string;
  readonly owner: string;
  readonly chains: readonly ChainId[];
  readonly approvers: readonly string[];
  readonly device: string;
  /** The pool's Bitcoin address kind: P2WPKH (default) or P2TR key-path. */
  readonly bitcoinAddressType: 'p2wpkh' | 'p2tr';
  readonly policy: Policy;
  /** The policy exactly as written, stored verbatim as version 1. */
  readonly policyDocument: PolicyDocument;
}

export interface CeremonyPlan {
  readonly version: 1;
  readonly device: string;
  readonly approvers: readonly Approver[];
  readonly admins: readonly string[];
  readonly adminQuorum: number;
  /** The backup custodians to enrol in the simulator (none when the plan names none). */
  readonly custodians: readonly CustodianEntry[];
  readonly pools: readonly PlannedPool[];
}

export function parseCeremonyPlan(json: unknown): CeremonyPlan {
  const parsed = ceremonyPlanSchema.safeParse(json);
  if (!parsed.success) throw new ValidationError('invalid_plan', zodMessage(parsed.error, ''));
  const p = parsed.data;

  const approvers: Approver[] = p.approvers.map((a, i) => {
    const publicKey = a.publicKey.toLowerCase();
    if (!isValidApproverKey(hexToBytes(publicKey))) {
      throw new ValidationError('invalid_plan', `approvers[${i}].publicKey: not a valid ${publicKey.length === 64 ? 'Ed25519' : 'secp256k1'} public key`);
    }
    return { id: a.id, publicKey };
  });
  const dupId = duplicates(approvers.map((a) => a.id));
  if (dupId) throw new ValidationError('invalid_plan', `approvers: id "${dupId}" appears twice`);
  const dupKey = duplicates(approvers.map((a) => a.publicKey));
  if (dupKey) throw new ValidationError('invalid_plan', `approvers: public key ${dupKey.slice(0, 16)}… is used by two approvers`);
  const ids = new Set(approvers.map((a) => a.id));

  const admins = p.admins ?? [];
  admins.forEach((a, i) => {
    if (!ids.has(a)) throw new ValidationError('invalid_plan', `admins[${i}]: "${a}" is not one of the plan's approvers`);
  });
  if (duplicates(admins)) throw new ValidationError('invalid_plan', `admins: "${duplicates(admins)}" appears twice`);
  const adminQuorum = p.adminQuorum ?? (admins.length > 0 ? admins.length : 1);
  if (admins.length > 0 && adminQuorum > admins.length) {
    throw new ValidationError('invalid_plan', `adminQuorum: ${adminQuorum} is more than the ${admins.length} admins`);
  }
  if (admins.length === 0 && p.adminQuorum !== undefined) throw new ValidationError('invalid_plan', 'adminQuorum: given without admins');
  const custodians = parseCustodians(p.custodians ?? [], admins.length, [p.device, ...p.pools.map((x) => x.device ?? p.device)]);

  const dupPool = duplicates(p.pools.map((x) => x.id));
  if (dupPool) throw new ValidationError('invalid_plan', `pools: id "${dupPool}" appears twice`);

  const pools: PlannedPool[] = p.pools.map((pool, i) => {
    const at = `pools[${i}]`;
    const chains = pool.chains.map((c, j) => parseChainId(c, `${at}.chains[${j}]`).id);
    const dupChain = duplicates(chains);
    if (dupChain) throw new ValidationError('invalid_plan', `${at}.chains: "${dupChain}" appears twice`);
    pool.approvers.forEach((a, j) => {
      if (!ids.has(a)) throw new ValidationError('invalid_plan', `${at}.approvers[${j}]: "${a}" is not one of the plan's approvers`);
    });
    const dupApprover = duplicates(pool.approvers);
    if (dupApprover) throw new ValidationError('invalid_plan', `${at}.approvers: "${dupApprover}" appears twice`);
    const policy = parsePolicyDocument(pool.policy, `${at}.policy`);
    assertPolicyChains(policy, chains, `${at}.policy`);
    policy.quorum.forEach((tier, j) => {
      if (tier.approvals > pool.approvers.length) {
        throw new ValidationError(
          'invalid_plan',
          `${at}.policy.quorum[${j}].approvals: ${tier.approvals} is more than the pool's ${pool.approvers.length} approvers`,
        );
      }
    });
    return {
      id: pool.id,
      owner: pool.owner,
      chains,
      approvers: pool.approvers,
      device: pool.device ?? p.device,
      bitcoinAddressType: pool.bitcoinAddressType ?? 'p2wpkh',
      policy,
      policyDocument: pool.policy as PolicyDocument,
    };
  });

  return { version: 1, device: p.device, approvers, admins, adminQuorum, custodians, pools };
}

/**
 * The plan's custodians: distinct ids and keys, each a usable X25519 key; at least two (a backup is
 * split among at least two), only with admins (an export needs their quorum) and a simulator device
 * (the device that makes backups).
 */
function parseCustodians(list: readonly { id: string; publicKey: string }[], admins: number, devices: readonly string[]): CustodianEntry[] {
  if (list.length === 0) return [];
  if (list.length < 2) throw new ValidationError('invalid_plan', 'custodians: a backup is split among at least 2 custodians; name 2 or more, or none');
  if (admins === 0) throw new ValidationError('invalid_plan', 'custodians: a backup export needs the admin quorum; name admins too');
  if (!devices.includes('sim')) throw new ValidationError('invalid_plan', 'custodians: only the simulator makes backups split among custodians, and the plan uses no "sim" device');
  const custodians = list.map((c, i) => {
    const publicKey = c.publicKey.toLowerCase();
    const problem = custodianKeyProblem(hexToBytes(publicKey));
    if (problem) throw new ValidationError('invalid_plan', `custodians[${i}].publicKey: ${problem}`);
    return { id: c.id, publicKey };
  });
  const dupId = duplicates(custodians.map((c) => c.id));
  if (dupId) throw new ValidationError('invalid_plan', `custodians: id "${dupId}" appears twice`);
  const dupKey = duplicates(custodians.map((c) => c.publicKey));
  if (dupKey) throw new ValidationError('invalid_plan', `custodians: public key ${dupKey.slice(0, 16)}… is used by two custodians`);
  return custodians;
}
