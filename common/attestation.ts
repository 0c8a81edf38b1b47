/**
 * Device attestation statements (SPEC section 7, docs/device-protocol.md "Attestation"): what a device
 * with an attestation key states about its own state, and the one way it is signed. Shared by the HSM
 * simulator, which builds the statements from what it holds (hsm-sim/attestation.ts), and the
 * verifiers: the ceremony that collects them and `custody ceremony verify` that checks them offline.
 *
 * A statement is RFC 8785 canonical JSON of one of two subjects:
 * - `key`: one key the device generated (handle, pool, chain, curve, public key, every address the key
 *   controls) and the state of its pool as the device holds it (approvers as key fingerprints, base
 *   threshold, policy hash and version, governance sequence, frozen);
 * - `device`: the device's governance (admins as key fingerprints, quorum, backup custodians, sequence)
 *   and the rules it enforces.
 * Both name the device (id, model, firmware) and the device's clock when it attested (`attestedAt`).
 *
 * The attestation key signs (Ed25519, RFC 8032) the UTF-8 bytes of ATTESTATION_DOMAIN followed by the
 * canonical statement, and nothing else: no opcode signs bytes the caller chose. The domain does not
 * begin like the retired ATTEST opcode's (`custody-hsm-sim attestation v1\n` + any bytes), so nothing
 * that opcode ever signed verifies as a statement.
 */
import { createHash } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { canonicalize } from 'json-canonicalize';
import { z } from 'zod';
import type { DeviceSummary, PoolSummary } from './governance-message.js';
import { MAX_STATEMENT_BYTES } from './sim-protocol.js';
import { parseChainId } from './chain-id.js';
import { everyAddressOfKey } from './chains/key-addresses.js';

export const ATTESTATION_KIND = 'custody.device-attestation';
export const ATTESTATION_VERSION = 1;
/** What the attestation key signs: these bytes, then the canonical statement. */
export const ATTESTATION_DOMAIN = 'custody.device-attestation.v1\n';

/** A pool as the device holds it when it attests one of its keys. */
export interface PoolState extends PoolSummary {
  /** The pool's governance sequence: how many governed changes the device applied to it. */
  readonly sequence: number;
  readonly frozen: boolean;
}

interface StatementBase {
  readonly kind: typeof ATTESTATION_KIND;
  readonly version: typeof ATTESTATION_VERSION;
  /** The device's id (on the simulator derived from its attestation key: simDeviceId). */
  readonly device: string;
  readonly model: string;
  readonly firmware: string;
  /** The device's clock when it attested, ISO 8601. */
  readonly attestedAt: string;
}

export interface KeyStatement extends StatementBase {
  readonly subject: 'key';
  readonly handle: string;
  readonly pool: string;
  readonly chain: string;
  readonly curve: 'secp256k1' | 'ed25519';
  /** Hex: compressed SEC1 (33 bytes) or Ed25519 (32 bytes). */
  readonly publicKey: string;
  /** Every address the key controls on its chain (common/chains/key-addresses.ts everyAddressOfKey). */
  readonly addresses: readonly string[];
  readonly poolState: PoolState;
}

export interface DeviceStatement extends StatementBase {
  readonly subject: 'device';
  /** The rules the device enforces itself (common/sim-protocol.ts DEVICE_RULES), as INFO lists them. */
  readonly enforces: readonly string[];
  readonly governance: DeviceSummary & { readonly sequence: number };
}

export type AttestationStatement = KeyStatement | DeviceStatement;

/** A statement and the device's Ed25519 signature over it (hex), as a transcript carries them. */
export interface SignedStatement<S extends AttestationStatement = AttestationStatement> {
  readonly statement: S;
  readonly signature: string;
}

export class AttestationFormatError extends Error {
  override readonly name = 'AttestationFormatError';
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 hash in lowercase hex');
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const members = z.array(z.strictObject({ id: z.string().min(1).max(64), fingerprint: hex64 })).max(64);
const base = {
  kind: z.literal(ATTESTATION_KIND),
  version: z.literal(ATTESTATION_VERSION),
  device: z.string().min(1).max(80),
  model: z.string().max(80),
  firmware: z.string().max(40),
  attestedAt: z.iso.datetime(),
};

const keyStatementSchema = z.strictObject({
  ...base,
  subject: z.literal('key'),
  handle: z.string().min(1).max(64),
  pool: z.string().min(1).max(64),
  chain: z.string().min(1).max(80),
  curve: z.enum(['secp256k1', 'ed25519']),
  publicKey: z.string().regex(/^(?:[0-9a-f]{2}){32,33}$/, 'expected a 32- or 33-byte public key in lowercase hex'),
  addresses: z.array(z.string().min(1).max(128)).min(1).max(4),
  poolState: z.strictObject({
    approvers: members,
    threshold: count,
    policy: z.union([hex64, z.literal('none')]),
    policyVersion: count,
    sequence: count,
    frozen: z.boolean(),
  }),
});

const deviceStatementSchema = z.strictObject({
  ...base,
  subject: z.literal('device'),
  enforces: z.array(z.string().min(1).max(64)).max(64),
  governance: z.strictObject({ admins: members, quorum: count, custodians: members, sequence: count }),
});

const statementSchema = z.discriminatedUnion('subject', [keyStatementSchema, deviceStatementSchema]);

/** Checks that `value` is a statement of a known subject with exactly its fields. */
export function parseStatement(value: unknown): AttestationStatement {
  const parsed = statementSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.map(String).join('.') ?? '';
    const message = issue?.code === 'unrecognized_keys' ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : (issue?.message ?? 'invalid');
    throw new AttestationFormatError(`attestation statement${path ? ` ${path}` : ''}: ${message}`);
  }
  return parsed.data as AttestationStatement;
}

/** Parses a statement as a device sends it: UTF-8 JSON that must be exactly its own RFC 8785 form. */
export function parseStatementText(text: string): AttestationStatement {
  if (Buffer.byteLength(text, 'utf8') > MAX_STATEMENT_BYTES) throw new AttestationFormatError(`attestation statement longer than ${MAX_STATEMENT_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AttestationFormatError('attestation statement is not JSON');
  }
  const statement = parseStatement(value);
  if (canonicalize(statement) !== text) throw new AttestationFormatError('attestation statement is not in RFC 8785 canonical form');
  return statement;
}

/** The bytes the attestation key signs for `statement`. */
export function attestationMessage(statement: AttestationStatement): Uint8Array {
  return new TextEncoder().encode(ATTESTATION_DOMAIN + canonicalize(statement));
}

/** True when `signature` (hex) is the Ed25519 signature of the key `attestationPublicKey` (hex) over the statement. */
export function verifyStatementSignature(signed: SignedStatement, attestationPublicKey: string): boolean {
  try {
    return ed25519.verify(hexToBytes(signed.signature), attestationMessage(signed.statement), hexToBytes(attestationPublicKey), { zip215: false });
  } catch {
    return false;
  }
}

/** The simulator's device id: `sim-` and the first 16 hex digits of sha256 of its attestation public key. */
export function simDeviceId(attestationPublicKey: Uint8Array): string {
  return 'sim-' + createHash('sha256').update(attestationPublicKey).digest('hex').slice(0, 16);
}

/** The device a statement must come from: its id, model and firmware, and its attestation public key (hex). */
export interface AttestingDeviceInfo {
  readonly id: string;
  readonly model: string;
  readonly firmware: string;
  readonly attestationPublicKey: string;
}

/** A key as a ceremony recorded it, to compare with the device's statement of it. */
export interface RecordedKey {
  readonly handle: string;
  readonly chain: string;
  readonly curve: string;
  readonly publicKey: string;
  readonly address: string;
}

function statementOf<S extends AttestationStatement['subject']>(value: SignedStatement, subject: S): Extract<AttestationStatement, { subject: S }> | string {
  let statement: AttestationStatement;
  try {
    statement = parseStatement(value.statement);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (statement.subject !== subject) return `the statement is of a ${statement.subject}, not of a ${subject}`;
  return statement as Extract<AttestationStatement, { subject: S }>;
}

function issuerProblem(device: AttestingDeviceInfo, signed: SignedStatement, statement: AttestationStatement): string | null {
  if (statement.device !== device.id) return `the statement was made by device ${statement.device}, not by ${device.id}`;
  if (statement.model !== device.model || statement.firmware !== device.firmware) {
    return `the statement names model ${statement.model} ${statement.firmware}, the device says it is ${device.model} ${device.firmware}`;
  }
  if (typeof signed.signature !== 'string' || !verifyStatementSignature({ statement, signature: signed.signature }, device.attestationPublicKey)) {
    return `the statement's signature does not verify under device ${device.id}'s attestation key (another key signed it, or a byte of it changed)`;
  }
  return null;
}

/**
 * What is wrong with `signed` as `device`'s statement of the key `key` of pool `pool`, or null: the
 * statement is a key statement of that device, signed by its attestation key, naming this pool, chain,
 * handle, curve and public key, and `key.address` is one of the addresses it lists and one derived here
 * from the attested public key.
 */
export function keyAttestationProblem(device: AttestingDeviceInfo, pool: string, key: RecordedKey, signed: SignedStatement): string | null {
  const statement = statementOf(signed, 'key');
  if (typeof statement === 'string') return statement;
  if (statement.pool !== pool) return `the statement attests a key of pool ${statement.pool}, not of ${pool}`;
  if (statement.chain !== key.chain) return `the statement attests a key on ${statement.chain}, not on ${key.chain}`;
  if (statement.handle !== key.handle) return `the statement attests key ${statement.handle}, not ${key.handle}`;
  if (statement.publicKey !== key.publicKey.toLowerCase() || statement.curve !== key.curve) {
    return `public key ${key.publicKey} is not the one the device attests (${statement.curve} ${statement.publicKey})`;
  }
  let derived: string[];
  try {
    derived = everyAddressOfKey(parseChainId(statement.chain), statement.publicKey);
  } catch (error) {
    return `no address derives from the attested key on ${statement.chain}: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!statement.addresses.includes(key.address) || !derived.includes(key.address)) {
    return `address ${key.address} is not an address of the attested key (${derived.join(' or ')})`;
  }
  return issuerProblem(device, signed, statement);
}

/** What is wrong with `signed` as `device`'s statement of its own governance, or null. */
export function deviceAttestationProblem(device: AttestingDeviceInfo, signed: SignedStatement): string | null {
  const statement = statementOf(signed, 'device');
  if (typeof statement === 'string') return statement;
  return issuerProblem(device, signed, statement);
}
