/**
 * What a new policy version changes, line by line, for the admin who approves it (SPEC sections 4 and
 * 9: the policy document's fields): assets added and removed, per-transaction maxima, velocity windows,
 * quorum tiers, the time lock, fee caps, cooling-off, request expiry, allowlist entries (address, label,
 * chain), internal transfers and contract calls. Pure: two documents in their wire form
 * (common/policy/policy.ts `PolicyDocument`) in, lines out. Allowlist entries' `addedAt` is left out,
 * as `policyHash` leaves it out: when an entry becomes usable is each holder's own record.
 */
import { canonicalize } from 'json-canonicalize';
import type { PolicyDocument } from '../../common/policy/policy.js';

/** `+` added, `-` removed, `~` changed. */
export interface PolicyDiffLine {
  readonly change: '+' | '-' | '~';
  /** What changed, e.g. "max per tx", "allowlist". */
  readonly what: string;
  readonly detail: string;
}

/** How an amount of base units of an asset is written for the reader. */
export type AmountFormat = (amount: string, asset: string) => string;

const baseUnits: AmountFormat = (amount, asset) => `${amount} base units of ${asset}`;

type Contract = NonNullable<PolicyDocument['contractCalls']>[number];
type Entry = NonNullable<PolicyDocument['allowlist']>[number];

/** The fields this module reads; any other field that differs is shown as its JSON. */
const KNOWN = ['quorum', 'assets', 'allowlist', 'newAddressCoolingOff', 'timelock', 'maxFee', 'requestExpiry', 'internalTransfers', 'contractCalls'];

function amounts(values: Readonly<Record<string, string>>, amount: AmountFormat): string {
  return Object.entries(values)
    .map(([asset, v]) => amount(v, asset))
    .join(', ');
}

function tierText(tier: PolicyDocument['quorum'][number], amount: AmountFormat): string {
  const n = `${tier.approvals} approval${tier.approvals === 1 ? '' : 's'}`;
  return tier.upTo === undefined ? `the rest: ${n}` : `up to ${amounts(tier.upTo, amount)}: ${n}`;
}

function timelockText(t: PolicyDocument['timelock'], amount: AmountFormat): string {
  return t === undefined ? 'none' : `above ${amounts(t.above, amount)}, signed ${t.delay} after the quorum`;
}

/** Addresses compare as the policy does: Ethereum's case-insensitively, the others exactly. */
function addressKey(address: string): string {
  return /^0x/i.test(address) ? address.toLowerCase() : address;
}

function entryKey(e: Entry): string {
  return `${addressKey(e.address)} ${e.chain ?? ''}`;
}

function entryText(e: Entry): string {
  return `${e.address}${e.label !== undefined ? ` "${e.label}"` : ''}${e.chain !== undefined ? ` on ${e.chain}` : ''}`;
}

function contractKey(c: Contract): string {
  return `${c.contract.toLowerCase()} ${c.selector.toLowerCase()} ${c.chain ?? ''}`;
}

function contractText(c: Contract): string {
  const args = Object.entries(c.args ?? {}).map(([name, rule]) => {
    const parts = [
      ...(rule.oneOf !== undefined ? [`one of ${rule.oneOf.join(', ')}`] : []),
      ...(rule.min !== undefined ? [`min ${rule.min}`] : []),
      ...(rule.max !== undefined ? [`max ${rule.max}`] : []),
    ];
    return `${name} ${parts.join(' and ')}`;
  });
  return [
    `${c.function ?? c.selector} on ${c.contract}${c.chain !== undefined ? ` (${c.chain})` : ''}${c.label !== undefined ? ` "${c.label}"` : ''}`,
    ...(c.function !== undefined ? [`selector ${c.selector}`] : []),
    ...(c.unlimited === true ? ['unlimited allowance allowed'] : []),
    ...(args.length > 0 ? [`arguments: ${args.join('; ')}`] : []),
  ].join(', ');
}

/** Lines for a keyed list: entries only in `before` removed, only in `after` added, both with another text changed. */
function listDiff<T>(what: string, before: readonly T[], after: readonly T[], key: (x: T) => string, text: (x: T) => string): PolicyDiffLine[] {
  const lines: PolicyDiffLine[] = [];
  const was = new Map(before.map((x) => [key(x), x]));
  const now = new Map(after.map((x) => [key(x), x]));
  for (const [k, x] of was) {
    const next = now.get(k);
    if (next === undefined) lines.push({ change: '-', what, detail: text(x) });
    else if (text(next) !== text(x)) lines.push({ change: '~', what, detail: `${text(x)} -> ${text(next)}` });
  }
  for (const [k, x] of now) if (!was.has(k)) lines.push({ change: '+', what, detail: text(x) });
  return lines;
}

/** A value present, absent or changed: one line, or none when equal. */
function valueDiff(what: string, before: string | undefined, after: string | undefined, absent = 'none'): PolicyDiffLine[] {
  if (before === after) return [];
  return [{ change: before === undefined ? '+' : after === undefined ? '-' : '~', what, detail: `${before ?? absent} -> ${after ?? absent}` }];
}

function assetText(asset: string, a: PolicyDocument['assets'][string], amount: AmountFormat): string {
  return [
    asset,
    ...(a.chain !== undefined ? [`on ${a.chain}`] : []),
    `max per tx ${a.maxPerTx !== undefined ? amount(a.maxPerTx, asset) : 'none'}`,
    ...(a.limits ?? []).map((l) => `${amount(l.max, asset)} per ${l.window}`),
  ].join(', ');
}

/** Every change from `before` to `after`, in the order of the document's fields; empty when they are the same policy. */
export function policyDiff(before: PolicyDocument, after: PolicyDocument, amount: AmountFormat = baseUnits): PolicyDiffLine[] {
  const lines: PolicyDiffLine[] = [];

  // Assets, and per asset its maximum, windows and chain.
  for (const [asset, a] of Object.entries(before.assets)) if (!(asset in after.assets)) lines.push({ change: '-', what: 'asset', detail: assetText(asset, a, amount) });
  for (const [asset, a] of Object.entries(after.assets)) {
    const old = before.assets[asset];
    if (old === undefined) {
      lines.push({ change: '+', what: 'asset', detail: assetText(asset, a, amount) });
      continue;
    }
    const fmt = (v: string | undefined) => (v === undefined ? undefined : amount(v, asset));
    lines.push(...valueDiff(`max per tx ${asset}`, fmt(old.maxPerTx), fmt(a.maxPerTx)));
    lines.push(...valueDiff(`chain of ${asset}`, old.chain, a.chain, 'the pool\'s only chain of its family'));
    const windows = (x: typeof a) => new Map((x.limits ?? []).map((l) => [l.window, l.max]));
    const was = windows(old);
    const now = windows(a);
    for (const [w, max] of was) lines.push(...valueDiff(`limit ${asset} per ${w}`, fmt(max), fmt(now.get(w))));
    for (const [w, max] of now) if (!was.has(w)) lines.push(...valueDiff(`limit ${asset} per ${w}`, undefined, fmt(max)));
  }

  // Quorum tiers: compared as a whole (the first tier that covers an amount applies, so order matters).
  const tiersBefore = before.quorum.map((t) => tierText(t, amount));
  const tiersAfter = after.quorum.map((t) => tierText(t, amount));
  if (canonicalize(tiersBefore) !== canonicalize(tiersAfter)) {
    for (const t of tiersBefore) if (!tiersAfter.includes(t)) lines.push({ change: '-', what: 'quorum tier', detail: t });
    for (const t of tiersAfter) if (!tiersBefore.includes(t)) lines.push({ change: '+', what: 'quorum tier', detail: t });
    if (tiersBefore.every((t) => tiersAfter.includes(t)) && tiersAfter.every((t) => tiersBefore.includes(t))) {
      lines.push({ change: '~', what: 'quorum tiers', detail: `in this order: ${tiersAfter.join('; ')}` });
    }
  }

  lines.push(...valueDiff('time lock', timelockText(before.timelock, amount), timelockText(after.timelock, amount)).map((l) => ({ ...l, change: '~' as const })));

  const caps = (x: PolicyDocument) => x.maxFee ?? {};
  for (const asset of new Set([...Object.keys(caps(before)), ...Object.keys(caps(after))])) {
    const fmt = (v: string | undefined) => (v === undefined ? undefined : amount(v, asset));
    lines.push(...valueDiff(`fee cap ${asset}`, fmt(caps(before)[asset]), fmt(caps(after)[asset]), 'uncapped'));
  }
  lines.push(...valueDiff('cooling-off', before.newAddressCoolingOff, after.newAddressCoolingOff));
  lines.push(...valueDiff('request expiry', before.requestExpiry, after.requestExpiry, 'never'));

  // Allowlist: without one, destinations are not restricted; an empty one refuses every destination.
  if ((before.allowlist === undefined) !== (after.allowlist === undefined)) {
    const restricted = (x: PolicyDocument) => (x.allowlist === undefined ? 'destinations not restricted' : 'only allowlisted destinations');
    lines.push({ change: '~', what: 'allowlist', detail: `${restricted(before)} -> ${restricted(after)}` });
  }
  lines.push(...listDiff('allowlist', before.allowlist ?? [], after.allowlist ?? [], entryKey, entryText));

  lines.push(...listDiff('internal transfers to', before.internalTransfers ?? [], after.internalTransfers ?? [], (p) => p, (p) => `pool ${p}`));
  lines.push(...listDiff('contract call', before.contractCalls ?? [], after.contractCalls ?? [], contractKey, contractText));

  const rest = (x: PolicyDocument) => x as unknown as Record<string, unknown>;
  for (const field of new Set([...Object.keys(rest(before)), ...Object.keys(rest(after))])) {
    if (KNOWN.includes(field)) continue;
    const text = (v: unknown) => (v === undefined ? undefined : canonicalize(v));
    lines.push(...valueDiff(field, text(rest(before)[field]), text(rest(after)[field])));
  }
  return lines;
}
