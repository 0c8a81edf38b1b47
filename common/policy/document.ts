/**
 * The policy document (SPEC section 9, as written in a ceremony plan and in a policy proposal) and its
 * parser into a `Policy`: amounts as bigints, durations in ms; errors name the JSON path at fault.
 * Shared by the gateway and the HSM simulator, which parses the document it holds itself.
 *
 * `policyHash` names a document in governance messages and device attestations: sha256 of its RFC 8785
 * form without the allowlist entries' `addedAt` (when an entry became usable is each holder's own
 * record: the device stamps entries new in a version with its own clock, the store with the gateway's).
 */
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { parseAmount } from '../amount.js';
import { parseDuration } from '../duration.js';
import { parseChainId, type ChainFamily } from '../chain-id.js';
import { sha256Canonical } from '../governance-message.js';
import { POOL_ID, type AllowlistEntry, type AssetAmounts, type AssetPolicy, type Policy, type PolicyDocument, type QuorumTier } from './policy.js';
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

export function zodMessage(error: z.ZodError, prefix: string): string {
  const issue = error.issues[0];
  if (!issue) return `${prefix}: invalid`;
  const path = issue.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), prefix);
  const message = issue.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message;
  return `${path || 'plan'}: ${message}`;
}

/**
 * Refuses two keys of a per-asset record that name one asset in two cases (`erc20:0xabc…` and its
 * EIP-55 form): the rules read whichever matches the transaction's spelling first (assetEntry), so one
 * of the two would silently never apply, whatever a reader of the document takes it to say.
 */
function assertOneSpellingPerAsset(record: Record<string, unknown> | undefined, path: string): void {
  const seen = new Map<string, string>();
  for (const asset of Object.keys(record ?? {})) {
    const other = seen.get(asset.toLowerCase());
    if (other !== undefined) throw new ValidationError('invalid_policy', `${path}: "${asset}" and "${other}" name the same asset; write it once`);
    seen.set(asset.toLowerCase(), asset);
  }
}

function amounts(record: Record<string, string> | undefined, path: string): AssetAmounts | undefined {
  if (record === undefined) return undefined;
  assertOneSpellingPerAsset(record, path);
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

  assertOneSpellingPerAsset(d.assets, `${path}.assets`);
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

export function duplicates(values: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const v of values) {
    if (seen.has(v)) return v;
    seen.add(v);
  }
  return undefined;
}


/** The hash that names a policy document (see the module comment). */
export function policyHash(doc: PolicyDocument): string {
  const allowlist = doc.allowlist?.map(({ addedAt: _stamp, ...entry }) => entry);
  return sha256Canonical(allowlist === undefined ? doc : { ...doc, allowlist });
}
