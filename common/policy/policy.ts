/**
 * A pool's withdrawal policy (SPEC sections 4 and 9), parsed: amounts are bigints, durations are
 * milliseconds. The wire form (`PolicyDocument`, as written in a ceremony plan) is parsed by
 * `parsePolicyDocument` in common/policy/document.ts. Policy versions are immutable. Shared by the
 * gateway and the HSM simulator, which holds each pool's policy and enforces it itself (SPEC rule 2).
 */

export type PoolStatus = 'active' | 'frozen';

export const POOL_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
export const APPROVER_ID = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;

/** A machine-readable reason attached to every decision. */
export interface Reason {
  readonly code: string;
  readonly message: string;
}

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
  /** The chain a token asset is on; without it, the pool's only chain of that family. */
  readonly chain?: string;
}

export interface AllowlistEntry {
  readonly address: string;
  readonly label?: string;
  /** The chain the address is on; without it, the pool's only chain of the address's family. */
  readonly chain?: string;
  /** When the entry became part of the policy (ms since epoch); entries from the ceremony have none. */
  readonly addedAt?: number;
}

/**
 * A constraint on one argument of an allowed contract call. Constraints only narrow: an address
 * argument must still pass the destination rules (allowlist, cooling-off, commingling).
 */
export interface CallArgumentRule {
  /** The argument must be one of these, in the decoder's text form (EIP-55, decimal, true/false, 0x-hex). */
  readonly oneOf?: readonly string[];
  /** Inclusive bounds of an integer argument. */
  readonly min?: bigint;
  readonly max?: bigint;
}

/**
 * A contract call the pool may make: the contract (lowercase hex), the function selector (`0x` + 8
 * hex) and its signature with argument names (the ERC-20 one for approve, increaseAllowance and
 * transferFrom; declared in the policy for any other function), with constraints on its arguments.
 */
export interface ContractCallRule {
  readonly contract: string;
  readonly selector: string;
  readonly label?: string;
  /** The chain the contract is on; without it, the pool's only EVM chain. */
  readonly chain?: string;
  /** Normalized signature, e.g. `approve(address spender, uint256 value)`. */
  readonly function: string;
  /** An approve or increaseAllowance at or above UNLIMITED_ALLOWANCE passes only with this set. */
  readonly unlimited: boolean;
  /** Constraints by argument name. */
  readonly args: Readonly<Record<string, CallArgumentRule>>;
}

/**
 * From this value on, an ERC-20 allowance is treated as unlimited: 2^96 - 1, which tokens with 96-bit
 * balances (COMP, UNI) read as "infinite", and above any realistic amount of a token of 18 decimals
 * (79 billion tokens); 2^256 - 1, the usual "infinite approval", is far above it.
 */
export const UNLIMITED_ALLOWANCE = (1n << 96n) - 1n;

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
  /** Pools of this gateway whose addresses this pool may pay; another pool's address is commingling. */
  readonly internalTransfers?: readonly string[];
  /** Contract calls allowed besides ERC-20 transfers; when absent, every other call is refused. */
  readonly contractCalls?: readonly ContractCallRule[];
}

/** The wire form of a policy, exactly as in a ceremony plan: decimal strings and `<n>s|m|h|d` durations. */
export interface PolicyDocument {
  quorum: { upTo?: Record<string, string>; approvals: number }[];
  assets: Record<string, { maxPerTx?: string; limits?: { window: string; max: string }[]; chain?: string }>;
  allowlist?: { address: string; label?: string; addedAt?: string; chain?: string }[];
  newAddressCoolingOff?: string;
  timelock?: { above: Record<string, string>; delay: string };
  maxFee?: Record<string, string>;
  requestExpiry?: string;
  internalTransfers?: string[];
  contractCalls?: {
    contract: string;
    selector: string;
    label?: string;
    chain?: string;
    function?: string;
    unlimited?: boolean;
    args?: Record<string, { oneOf?: string[]; min?: string; max?: string }>;
  }[];
}
