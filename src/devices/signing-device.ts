/**
 * The one interface every key device implements (HSM simulator, Ledger, PKCS#11): each backend is a
 * thin adapter in its own folder, checked with `satisfies SigningDevice`.
 *
 * A device holds pool keys that never leave it. `sign` carries the quorum evidence: the approval
 * messages and their signatures. The simulator verifies them itself (SPEC rule 2); a device that
 * cannot (PKCS#11) says so in `info().checksQuorum`.
 */
import type { Curve } from '../domain/pool.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import type { DeviceRule } from '../../common/sim-protocol.js';
import type { DeviceStatement, KeyStatement, SignedStatement } from '../../common/attestation.js';

export type { DeviceRule };

export type SignatureScheme = 'ecdsa-secp256k1' | 'schnorr-bip340' | 'ed25519';

export interface DeviceInfo {
  /** Stable identifier of this device (derived from its attestation key on the simulator). */
  readonly id: string;
  readonly type: 'sim' | 'ledger' | 'pkcs11';
  readonly model: string;
  readonly firmware: string;
  /** Hex of the device's Ed25519 attestation public key, when it has one. */
  readonly attestationPublicKey: string | null;
  /** True when the device itself verifies the approvals before signing. */
  readonly checksQuorum: boolean;
  /**
   * The rules the device enforces itself whatever the gateway does (common/sim-protocol.ts
   * DEVICE_RULES); every other rule rests on the gateway alone (docs/threat-model.md).
   */
  readonly enforces: readonly DeviceRule[];
}

export interface EnrolledApprover {
  readonly id: string;
  /** Approver public key, hex: Ed25519 (32 bytes), or compressed secp256k1 (33 bytes) for EIP-191 approvals by a hardware wallet. */
  readonly publicKey: string;
}

/** A backup custodian as a device enrols one: the X25519 key (hex) backup shares are encrypted to. */
export interface EnrolledCustodian {
  readonly id: string;
  readonly publicKey: string;
}

export interface GeneratedKey {
  readonly handle: string;
  readonly curve: Curve;
  /** Compressed SEC1 (33 bytes) for secp256k1, 32 bytes for ed25519, hex. */
  readonly publicKey: string;
}

export interface DeviceKey extends GeneratedKey {
  readonly poolId: string;
  readonly chain: string;
}

export interface ApprovalEvidence {
  /** Approver public key, hex (Ed25519 32 bytes, or secp256k1 33 bytes). */
  readonly publicKey: string;
  /** The approval message text exactly as signed (RFC 8785 canonical JSON). */
  readonly message: string;
  /** Ed25519 (64 bytes) or EIP-191 (65 bytes, r || s || v) signature over the UTF-8 bytes of `message`, hex. */
  readonly signature: string;
}

export interface SignRequest {
  readonly handle: string;
  readonly poolId: string;
  readonly scheme: SignatureScheme;
  /**
   * ECDSA and Schnorr: one or more 32-byte hashes to sign; Ed25519: the message. The approvals name
   * `digest`, which is the payload itself (one hash) or sha256 of the payload.
   */
  readonly payload: Uint8Array;
  readonly digest: Uint8Array;
  readonly approvals: readonly ApprovalEvidence[];
  /**
   * The whole unsigned transaction, for devices that parse and show it before signing (a Ledger's
   * Ethereum app signs the transaction, not a hash): its CAIP-2 chain and its stored form (Ethereum:
   * 0x-hex of the unsigned serialization, whose keccak256 is `digest`).
   */
  readonly transaction: { readonly chain: string; readonly unsignedTx: string };
}

/** Proof of control: the pool key signs an auditor's challenge once the admin quorum approved it. */
export interface ControlSignRequest {
  readonly handle: string;
  readonly poolId: string;
  /** The key's CAIP-2 chain: it decides the message format (common/control-message.ts). */
  readonly chain: string;
  readonly challenge: string;
  /** The admins' signed governance messages approving exactly this challenge for this pool. */
  readonly approvals: readonly ApprovalEvidence[];
}

export interface DeviceSignature {
  readonly scheme: SignatureScheme;
  /** The first (usually only) signature: r || s (64 bytes, low-S) for ECDSA, 64 bytes for Schnorr and Ed25519. */
  readonly signature: Uint8Array;
  /** ECDSA recovery id (y parity of R) of the first signature, 0 or 1. */
  readonly recovery: 0 | 1 | null;
  /** Every signature, one per 32-byte hash of the payload, in order (one input each for Bitcoin). */
  readonly parts: readonly { readonly signature: Uint8Array; readonly recovery: 0 | 1 | null }[];
}

export interface SigningDevice {
  info(): Promise<DeviceInfo>;
  /** Binds a pool to its approvers, base threshold and policy inside the device (a device that holds policies enforces it); refuses to rebind. */
  enrollPool(poolId: string, approvers: readonly EnrolledApprover[], threshold: number, policy: PolicyDocument): Promise<void>;
  /**
   * Binds the admins and their quorum, who may later rebind pools, once per device; and, on a device
   * that makes backups (the simulator), the custodians its backups may be encrypted to. A device that
   * makes no backups is given none (the ceremony refuses custodians for it).
   */
  enrollGovernance(admins: readonly EnrolledApprover[], quorum: number, custodians?: readonly EnrolledCustodian[]): Promise<void>;
  /**
   * Applies a governed change to a pool (`change` is the proposal's change: a policy version, a change
   * of approvers, unfreezing). The evidence is the admins' signed governance messages; a device that
   * holds governance checks them itself against what it holds (common/governance-message.ts).
   */
  governPool(poolId: string, change: unknown, approvals: readonly ApprovalEvidence[]): Promise<void>;
  /** Freezes a pool on one admin's signed freeze message (break glass); a device that holds no freeze ignores it. */
  freezePool(poolId: string, approval: ApprovalEvidence): Promise<void>;
  /**
   * What the device holds for a pool (its summary and governance sequence, common/governance-message.ts),
   * or, for "", its own governance; null for a device that holds no governance.
   */
  governanceState(poolId: string): Promise<{ readonly summary: string; readonly sequence: number } | null>;
  /** Generates a key for (pool, chain) inside the device; refuses a second one. */
  generateKey(poolId: string, chain: string, curve: Curve): Promise<GeneratedKey>;
  publicKey(handle: string): Promise<DeviceKey>;
  listKeys(): Promise<readonly DeviceKey[]>;
  /** Signs once the device is satisfied with the evidence. Never retried by callers. */
  sign(request: SignRequest): Promise<DeviceSignature>;
  /**
   * Signs a proof-of-control challenge with a pool key in its chain's message format: ECDSA r || s with
   * the recovery id for EIP-191 and Bitcoin messages, Ed25519 for Solana. A device that checks quorums
   * verifies the admins' approvals of this challenge itself.
   */
  signMessage(request: ControlSignRequest): Promise<{ readonly signature: Uint8Array; readonly recovery: 0 | 1 | null }>;
  /**
   * Attestation, a capability a device has or has not: a statement the device builds from its own
   * state about one of its keys and that key's pool, or about its governance (common/attestation.ts),
   * signed with its attestation key (`info().attestationPublicKey`). No device signs statements the
   * gateway writes. A Ledger and a PKCS#11 token have no attestation key: their keys are unattested.
   */
  attestKey?(handle: string): Promise<SignedStatement<KeyStatement>>;
  attestDevice?(): Promise<SignedStatement<DeviceStatement>>;
  close(): Promise<void>;
}
