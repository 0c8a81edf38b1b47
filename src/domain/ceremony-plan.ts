/**
 * The ceremony plan (SPEC sections 7 and 9; `examples/ceremony-plan.json` is accepted verbatim) and
 * the policy document inside it, parsed into domain values: amounts as bigints, durations in ms.
 * Errors name the JSON path at fault.
 */
import { z } from 'zod';
import { hexToBytes } from '@noble/hashes/utils.js';
import { isValidApproverKey } from '../../common/approver-key.js';
import { ValidationError } from '../../common/errors.js';
import { parseAmount } from '../../common/amount.js';
import { parseDuration } from './duration.js';
import { parseChainId, type ChainFamily, type ChainId } from '../../common/chain-id.js';
import { APPROVER_ID, POOL_ID, type Approver } from './pool.js';
import type { AllowlistEntry, AssetAmounts, AssetPolicy, Policy, PolicyDocument, QuorumTier } from './policy.js';
import { contractCallEntrySchema, parseContractCallRules } from './contract-call-rules.js';

const decimal = z.string().regex(/^(0|[1-9][0-9]*)$/, 'expected a decimal string of base units');
const duration = z.string().regex(/^[1-9][0-9]{0,6}[smhd]$/, 'expected a duration <n>s|m|h|d such as "24h"');
const assetAmounts = z.record(z.string().min(1).max(80), decimal);

export const policyDocumentSchema = z.strictObject({
  quorum: z
    .array(z.strictObject({ upTo: assetAmounts.optional(), approvals: z.number().int().min(1).max(100) }))
    .min(1, 'expected at least one quorum tier'),
  assets: z.record(
    z.string().min(1).max(80),
    z.strictObject({
      maxPerTx: decimal.optional(),
      limits: z.array(z.strictObject({ window: duration, max: decimal })).max(16).optional(),
      chain: z.string().max(80).optional(),
    }),
  ),
  allowlist: z
    .array(
      z.strictObject({
        address: z.string().min(1).max(128),
        label: z.string().max(200).optional(),
        addedAt: z.iso.datetime().optional(),
        chain: z.string().max(80).optional(),
      }),
    )
    .max(10_000)
    .optional(),
  newAddressCoolingOff: duration.optional(),
  timelock: z.strictObject({ above: assetAmounts, delay: duration }).optional(),
  maxFee: assetAmounts.optional(),
  requestExpiry: duration.optional(),
  /** Pools of this gateway this pool may pay (internal transfers); any other pool's address is refused (commingling). */
  internalTransfers: z.array(z.string().regex(POOL_ID, 'expected a pool id')).max(1000).optional(),
  contractCalls: z.array(contractCallEntrySchema).max(1000).optional(),
});

/** The key device backends a plan may name (SPEC section 9: the simulator, a Ledger, a PKCS#11 token). */
const planDevice = z.enum(['sim', 'ledger', 'pkcs11'], 'expected a device type: "sim", "ledger" or "pkcs11"');

const approverSchema = z.strictObject({
  id: z.string().regex(APPROVER_ID, 'expected an approver id (letters, digits, ".", "_", "-")'),
  publicKey: z.string().regex(/^(?:[0-9a-fA-F]{64}|0[23][0-9a-fA-F]{64})$/, 'expected a 32-byte Ed25519 public key, or a 33-byte compressed secp256k1 key of a hardware wallet (EIP-191), in hex'),
});

export const ceremonyPlanSchema = z.strictObject({
  version: z.literal(1),
  device: planDevice,
  approvers: z.array(approverSchema).min(1),
  admins: z.array(z.string()).optional(),
  adminQuorum: z.number().int().min(1).optional(),
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
  readonly pools: readonly PlannedPool[];
}

function zodMessage(error: z.ZodError, prefix: string): string {
  const issue = error.issues[0];
  if (!issue) return `${prefix}: invalid`;
  const path = issue.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), prefix);
  const message = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
  return `${path || 'plan'}: ${message}`;
}

function amounts(record: Record<string, string> | undefined, path: string): AssetAmounts | undefined {
  if (record === undefined) return undefined;
  const out: Record<string, bigint> = {};
  for (const [asset, value] of Object.entries(record)) out[asset] = parseAmount(value, `${path}.${asset}`);
  return out;
}

/** Parses and checks a policy document; `path` prefixes error messages. */
export function parsePolicyDocument(doc: unknown, path = 'policy'): Policy {
  const parsed = policyDocumentSchema.safeParse(doc);
  if (!parsed.success) throw new ValidationError('invalid_policy', zodMessage(parsed.error, path));
  const d = parsed.data;

  const quorum: QuorumTier[] = d.quorum.map((tier, i) => {
    if (tier.upTo === undefined && i !== d.quorum.length - 1) {
      throw new ValidationError('invalid_policy', `${path}.quorum[${i}]: only the last tier may omit "upTo"`);
    }
    const upTo = amounts(tier.upTo, `${path}.quorum[${i}].upTo`);
    return upTo === undefined ? { approvals: tier.approvals } : { upTo, approvals: tier.approvals };
  });

  const assets: Record<string, AssetPolicy> = {};
  for (const [asset, a] of Object.entries(d.assets)) {
    const limits = (a.limits ?? []).map((l, i) => ({
      window: l.window,
      windowMs: parseDuration(l.window, `${path}.assets.${asset}.limits[${i}].window`),
      max: parseAmount(l.max, `${path}.assets.${asset}.limits[${i}].max`),
    }));
    const windows = new Set(limits.map((l) => l.windowMs));
    if (windows.size !== limits.length) throw new ValidationError('invalid_policy', `${path}.assets.${asset}.limits: two limits with the same window`);
    assets[asset] = {
      limits,
      ...(a.maxPerTx !== undefined ? { maxPerTx: parseAmount(a.maxPerTx, `${path}.assets.${asset}.maxPerTx`) } : {}),
      ...(a.chain !== undefined ? { chain: parseChainId(a.chain, `${path}.assets.${asset}.chain`).id } : {}),
    };
  }

  const policy: {
    -readonly [K in keyof Policy]: Policy[K];
  } = { quorum, assets };
  if (d.allowlist !== undefined) {
    const seen = new Set<string>();
    policy.allowlist = d.allowlist.map((e, i): AllowlistEntry => {
      const key = e.address.toLowerCase();
      if (seen.has(key)) throw new ValidationError('invalid_policy', `${path}.allowlist[${i}]: address "${e.address}" is listed twice`);
      seen.add(key);
      return {
        address: e.address,
        ...(e.label !== undefined ? { label: e.label } : {}),
        ...(e.addedAt !== undefined ? { addedAt: Date.parse(e.addedAt) } : {}),
        ...(e.chain !== undefined ? { chain: parseChainId(e.chain, `${path}.allowlist[${i}].chain`).id } : {}),
      };
    });
  }
  if (d.newAddressCoolingOff !== undefined) policy.newAddressCoolingOffMs = parseDuration(d.newAddressCoolingOff, `${path}.newAddressCoolingOff`);
  if (d.timelock !== undefined) {
    policy.timelock = { above: amounts(d.timelock.above, `${path}.timelock.above`) ?? {}, delayMs: parseDuration(d.timelock.delay, `${path}.timelock.delay`) };
  }
  const maxFee = amounts(d.maxFee, `${path}.maxFee`);
  if (maxFee !== undefined) policy.maxFee = maxFee;
  if (d.requestExpiry !== undefined) policy.requestExpiryMs = parseDuration(d.requestExpiry, `${path}.requestExpiry`);
  if (d.internalTransfers !== undefined) {
    const repeated = duplicates(d.internalTransfers);
    if (repeated !== undefined) throw new ValidationError('invalid_policy', `${path}.internalTransfers: pool "${repeated}" is listed twice`);
    policy.internalTransfers = [...d.internalTransfers];
  }
  if (d.contractCalls !== undefined) policy.contractCalls = parseContractCallRules(d.contractCalls, `${path}.contractCalls`);
  return policy;
}

/** The family of chains an address can be on, by its form (the check of its encoding comes at use). */
function addressFamily(address: string): ChainFamily {
  if (/^0x[0-9a-fA-F]{40}$/.test(address)) return 'eip155';
  if (/^(bc1|tb1|bcrt1)[02-9ac-hj-np-z]+$/i.test(address) || /^[123mn][1-9A-HJ-NP-Za-km-z]{25,34}$/.test(address)) return 'bip122';
  return 'solana';
}

/**
 * Ties allowlist entries, contract calls and token assets to the pool's chains: one that names a chain
 * must name one of the pool's; one that names none applies on the pool's only chain of its family, and
 * is refused (naming the entry) where the pool holds two chains of that family, or none.
 */
export function assertPolicyChains(policy: Policy, chains: readonly string[], path: string): void {
  const families = new Map<ChainFamily, string[]>();
  for (const c of chains) {
    const family = parseChainId(c).family;
    families.set(family, [...(families.get(family) ?? []), c]);
  }
  const check = (entry: { readonly chain?: string }, family: ChainFamily, at: string, what: string) => {
    if (entry.chain !== undefined) {
      if (!chains.includes(entry.chain)) throw new ValidationError('invalid_policy', `${at}.chain: ${entry.chain} is not a chain of the pool (${chains.join(', ')})`);
      return;
    }
    const candidates = families.get(family) ?? [];
    if (candidates.length === 0) throw new ValidationError('invalid_policy', `${at}: ${what} is for a ${family} chain, and the pool holds none`);
    if (candidates.length > 1) {
      throw new ValidationError('invalid_policy', `${at}: ${what} could be on ${candidates.join(' or ')}; name its "chain"`);
    }
  };
  policy.allowlist?.forEach((e, i) => check(e, addressFamily(e.address), `${path}.allowlist[${i}]`, `address ${e.address}`));
  for (const [asset, a] of Object.entries(policy.assets)) {
    if (asset.toLowerCase().startsWith('erc20:')) check(a, 'eip155', `${path}.assets.${asset}`, `token ${asset}`);
  }
  policy.contractCalls?.forEach((c, i) => check(c, 'eip155', `${path}.contractCalls[${i}]`, `contract ${c.contract}`));
}

/** The smallest number of approvals any tier requires: what the device itself enforces. */
export function baseThreshold(policy: Policy): number {
  return Math.min(...policy.quorum.map((t) => t.approvals));
}

function duplicates(values: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) return v;
    seen.add(v);
  }
  return undefined;
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

  return { version: 1, device: p.device, approvers, admins, adminQuorum, pools };
}
