/**
 * A pool's withdrawal policy (SPEC sections 4 and 9), parsed: amounts are bigints, durations are
 * milliseconds. The wire form (`PolicyDocument`, as written in a ceremony plan) is parsed by
 * `parsePolicyDocument` in src/domain/ceremony-plan.ts. Policy versions are immutable.
 */

/** Per-asset amounts, keyed by asset symbol (`ETH`, `BTC`, `SOL`, `erc20:<contract>`). */
export type AssetAmounts = Readonly<Record<string, bigint>>;

export interface QuorumTier {
  /** Inclusive upper bound per asset; a tier without `upTo` (or without the asset) covers the rest. */
  readonly upTo?: AssetAmounts;
  readonly approvals: number;
}

export interface VelocityLimit {
  /** As written, e.g. "24h". */
  readonly window: string;
  readonly windowMs: number;
  readonly max: bigint;
}

export interface AssetPolicy {
  readonly maxPerTx?: bigint;
  readonly limits: readonly VelocityLimit[];
}

export interface AllowlistEntry {
  readonly address: string;
  readonly label?: string;
  /** When the entry became part of the policy (ms since epoch); entries from the ceremony have none. */
  readonly addedAt?: number;
}

/** A contract call the pool may make: the contract (lowercase hex) and function selector (`0x` + 8 hex). */
export interface ContractCallRule {
  readonly contract: string;
  readonly selector: string;
  readonly label?: string;
}

export interface Policy {
  readonly quorum: readonly QuorumTier[];
  /** Allowed assets: an asset not listed here is refused. */
  readonly assets: Readonly<Record<string, AssetPolicy>>;
  /** Destination allowlist; when absent, destinations are not restricted. */
  readonly allowlist?: readonly AllowlistEntry[];
  readonly newAddressCoolingOffMs?: number;
  readonly timelock?: { readonly above: AssetAmounts; readonly delayMs: number };
  readonly maxFee?: AssetAmounts;
  readonly requestExpiryMs?: number;
  /** Contract calls allowed besides ERC-20 transfers; when absent, every other call is refused. */
  readonly contractCalls?: readonly ContractCallRule[];
}

/** The wire form of a policy, exactly as in a ceremony plan: decimal strings and `<n>s|m|h|d` durations. */
export interface PolicyDocument {
  quorum: { upTo?: Record<string, string>; approvals: number }[];
  assets: Record<string, { maxPerTx?: string; limits?: { window: string; max: string }[] }>;
  allowlist?: { address: string; label?: string; addedAt?: string }[];
  newAddressCoolingOff?: string;
  timelock?: { above: Record<string, string>; delay: string };
  maxFee?: Record<string, string>;
  requestExpiry?: string;
  contractCalls?: { contract: string; selector: string; label?: string }[];
}
