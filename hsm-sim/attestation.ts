/**
 * What the simulator attests (common/attestation.ts; docs/device-protocol.md "Attestation"): statements
 * it builds here from its own state, a key and its pool (ATTEST_KEY) or its governance (ATTEST_DEVICE),
 * signed with its attestation key. Nothing a caller sends goes into a statement but the handle of the
 * key to attest, which must name a key the device holds: the attestation key therefore never signs
 * bytes a compromised gateway chose.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { canonicalize } from 'json-canonicalize';
import { ATTESTATION_KIND, ATTESTATION_VERSION, attestationMessage, type AttestationStatement, type DeviceStatement, type KeyStatement } from '../common/attestation.js';
import { parseChainId } from '../common/chain-id.js';
import { everyAddressOfKey } from '../common/chains/key-addresses.js';
import { memberSummaries } from '../common/governance-message.js';
import { poolSummary } from './pool-governance.js';
import type { HeldPolicy } from './pool-policy.js';
import type { GovernanceBinding, KeyEntry, PoolBinding } from './sealed-state.js';

/** Who is attesting, and when by its own clock. */
export interface AttestingDevice {
  readonly id: string;
  readonly model: string;
  readonly firmware: string;
  readonly now: number;
}

function header(device: AttestingDevice) {
  return { kind: ATTESTATION_KIND, version: ATTESTATION_VERSION, device: device.id, model: device.model, firmware: device.firmware, attestedAt: new Date(device.now).toISOString() } as const;
}

/** A key the device holds, with its pool's binding and policy as the device holds them. */
export function keyStatement(device: AttestingDevice, handle: string, key: KeyEntry, binding: PoolBinding, held: HeldPolicy | null): KeyStatement {
  return {
    ...header(device),
    subject: 'key',
    handle,
    pool: key.poolId,
    chain: key.chain,
    curve: key.curve,
    publicKey: key.publicKey,
    // The device's own derivation, the one its commingling index uses.
    addresses: everyAddressOfKey(parseChainId(key.chain), key.publicKey),
    poolState: { ...poolSummary(binding, held), sequence: binding.sequence ?? 0, frozen: binding.frozen === true },
  };
}

/** The device's governance as it holds it (none enrolled: no admins, quorum 0), and what it enforces. */
export function deviceStatement(device: AttestingDevice, governance: GovernanceBinding | undefined, enforces: readonly string[]): DeviceStatement {
  return {
    ...header(device),
    subject: 'device',
    enforces: [...enforces],
    governance: {
      admins: memberSummaries(governance?.admins ?? []),
      quorum: governance?.quorum ?? 0,
      custodians: memberSummaries(governance?.custodians ?? []),
      sequence: governance?.sequence ?? 0,
    },
  };
}

/** The statement's canonical text, as ATTEST_KEY and ATTEST_DEVICE answer it, and its signature by `attestationSecretKey`. */
export function signStatement(statement: AttestationStatement, attestationSecretKey: Uint8Array): { statement: string; signature: Uint8Array } {
  return { statement: canonicalize(statement), signature: ed25519.sign(attestationMessage(statement), attestationSecretKey) };
}
