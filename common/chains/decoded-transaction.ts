/**
 * What every chain family's decoder yields for an unsigned transaction (SPEC rule 3, section 5): the
 * facts the policy, the approval message and the human read, and what the key signs. The gateway,
 * the approver's client and the HSM simulator all decode with the same adapters (one per family, in
 * common/chains/<family>/adapter.ts), so what approvers see is what the device signs.
 */
import type { ParsedChainId } from '../chain-id.js';
import type { SchemeName } from '../sim-protocol.js';

/** One decoded argument of a contract call: its ABI name and type, and its value as text. */
export interface DecodedArgument {
  readonly name: string;
  readonly type: string;
  /** Addresses in EIP-55 form, integers as decimal strings, booleans `true`/`false`, bytes 0x-hex. */
  readonly value: string;
}

/** A contract call the transaction makes, decoded by ABI where the function is known. */
export interface DecodedCall {
  /** EIP-55 contract address. */
  readonly contract: string;
  /** `0x` and 8 lowercase hex digits. */
  readonly selector: string;
  /** The function's signature with argument names, e.g. `approve(address spender, uint256 amount)`; absent when unknown. */
  readonly function?: string;
  readonly args?: readonly DecodedArgument[];
}

export interface DecodedTransaction {
  /** `ETH`, `BTC`, `SOL` or `erc20:<EIP-55 contract>`. */
  readonly asset: string;
  /**
   * Base units moved to `to` (0 for a contract call that moves no value); for an ERC-20 approve,
   * increaseAllowance or transferFrom, the token amount its spender may take or its recipient gets.
   */
  readonly amount: bigint;
  /**
   * Destination in the chain's canonical form: the payee, the token recipient, the spender of an
   * ERC-20 allowance, or the called contract.
   */
  readonly to: string;
  /** The most the transaction can pay in fees, native base units. */
  readonly maxFee: bigint;
  /** What approvals name: the hash the key signs (Ethereum) or sha256 of what it signs. */
  readonly digest: Uint8Array;
  /** What the key signs: one or more 32-byte hashes (ECDSA, Schnorr), or the message (Ed25519). */
  readonly payload: Uint8Array;
  readonly scheme: SchemeName;
  /** The contract call other than an ERC-20 transfer, or null; decoded by ABI where its function is known. */
  readonly call: DecodedCall | null;
  /** The chain's replay key: `nonce:<n>` (Ethereum), `tx:<digest>` otherwise. */
  readonly signOnceKey: string;
  /** Shared resources only one live request may spend (Bitcoin: `utxo:<txid>:<vout>`). */
  readonly claims: readonly string[];
  /** Everything the transaction says, in order, as label and value, for a human to read. */
  readonly details: readonly (readonly [string, string])[];
}

/** What a reader knows besides the transaction. */
export interface DecodeOptions {
  /**
   * Human-readable signatures with argument names (`deposit(address to, uint256 amount)`) of contract
   * functions other than the ERC-20 ones every reader knows: the gateway passes its pool policy's,
   * the approver's client the message's own `call.function`. A signature decodes only the selector
   * it hashes to.
   */
  readonly functions?: readonly string[];
}

/**
 * A chain family's decoder. `signer` is the pool key's public key (compressed secp256k1 or Ed25519),
 * when the caller knows it: the transaction must then spend from that key; null for a reader that has
 * only the transaction (it then names its spender itself).
 */
export interface ChainAdapter {
  decode(chain: ParsedChainId, unsignedTx: string, signer: Uint8Array | null, options?: DecodeOptions): DecodedTransaction;
}
