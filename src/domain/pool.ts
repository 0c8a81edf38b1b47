/**
 * Pools, their keys and approvers (SPEC section 4). A key belongs to exactly one pool (rule 1).
 */
import type { PoolStatus } from '../../common/policy/policy.js';
import type { ChainId } from '../../common/chain-id.js';

export type { PoolStatus } from '../../common/policy/policy.js';
export type Curve = 'secp256k1' | 'ed25519';

export { APPROVER_ID, POOL_ID } from '../../common/policy/policy.js';

export interface Pool {
  readonly id: string;
  readonly owner: string;
  readonly chains: readonly ChainId[];
  readonly status: PoolStatus;
  /** Approver ids enrolled for this pool. */
  readonly approvers: readonly string[];
  readonly policyVersion: number;
  readonly createdAt: number;
}

export interface PoolKey {
  readonly poolId: string;
  readonly chain: ChainId;
  readonly curve: Curve;
  /** Hex, no 0x: compressed SEC1 (33 bytes) for secp256k1, 32 bytes for ed25519. */
  readonly publicKey: string;
  /** The chain's address form: EIP-55 for Ethereum, bech32 P2WPKH for Bitcoin. */
  readonly address: string;
  /** The device id (from the device's info) that holds the key. */
  readonly device: string;
  /** The device's key handle (simulator handle, PKCS#11 label, or BIP32 path). */
  readonly handle: string;
  readonly ceremonyId: string;
  readonly createdAt: number;
}

export interface Approver {
  readonly id: string;
  /** Ed25519 public key (32 bytes), or a hardware wallet's compressed secp256k1 key (33 bytes) for EIP-191 approvals; hex. */
  readonly publicKey: string;
}
