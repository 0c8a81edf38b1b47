/**
 * The simulated HSM: what it holds (pool bindings, keys, the attestation key) and what each command
 * does to it. Keys are generated here and never leave; every change is sealed to disk before the
 * command answers. Failures are DeviceRefusal with the protocol status to answer.
 */
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { Status, type CurveName, type DeviceRule, type KeyRecord, type SchemeName, type SignCommand } from '../common/sim-protocol.js';
import { decodeTransaction } from '../common/chains/adapters.js';
import { parseApprovalMessage } from '../common/approval-message.js';
import type { DecodedTransaction } from '../common/chains/decoded-transaction.js';
import { checkQuorum, governanceRefusal, isRefusal, type ApprovalEvidence } from './quorum-check.js';
import { PoolChangeError, applyPoolChange, parsePoolChange, poolSummary, type PoolChange } from './pool-governance.js';
import { sha256Canonical, type DeviceSummary, type PoolSummary } from '../common/governance-message.js';
import { AddressBook, deviceDecision, enrolmentStamps, holdPolicy, type HeldPolicy } from './pool-policy.js';
import { SignJournal, transactionKey } from './sign-journal.js';
import { formatDuration } from '../common/duration.js';
import { parseChainId } from '../common/chain-id.js';
import { everyAddressOfKey } from '../common/chains/key-addresses.js';
import { challengeProblem, controlFormat, controlSigningInput } from '../common/control-message.js';
import { signTaprootKeyPath } from './taproot.js';
import { signRecoverable } from '../common/libsecp256k1.js';
import { createBackup, openBackup } from './backup.js';
import { authorizeExport, deviceSummary, enrolledCustodians, governDevice, isDeviceRefusal } from './device-governance.js';
import { BackupFormatError } from '../common/backup-format.js';
import { isValidApproverKey } from '../common/approver-key.js';
import { deviceStatement, keyStatement, signStatement } from './attestation.js';
import { simDeviceId, type AttestationStatement } from '../common/attestation.js';
import { SealedStore, applyChange, type KeyEntry, type PoolBinding, type SignedRecord, type SimState, type StateChange } from './sealed-state.js';

export const MODEL = 'custody-hsm-sim';
export const FIRMWARE = '2.0.0';
/**
 * What this device enforces itself (SPEC rule 2): a rule is named here only when the device holds it.
 * `attestation`: the attestation key signs only statements the device builds from its own state
 * (hsm-sim/attestation.ts); `backup-quorum`: keys leave only wrapped, under the admin quorum.
 */
export const SIM_ENFORCES: readonly DeviceRule[] = ['quorum', 'quorum-tier', 'max-per-tx', 'allowlist', 'cooling-off', 'commingling', 'fee-cap', 'contract-calls', 'velocity', 'timelock', 'freeze', 'sign-once', 'governance', 'backup-quorum', 'attestation'];

export class DeviceRefusal extends Error {
  override readonly name = 'DeviceRefusal';
  constructor(readonly status: Status, message: string) {
    super(message);
  }
}

/** SIGN before the time lock has passed: the answer says when to come back. */
export class TimeLocked extends DeviceRefusal {
  constructor(message: string, readonly until: number) {
    super(Status.TIMELOCKED, message);
  }
}

const POOL_ID = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const CHAIN_ID = /^(eip155|bip122|solana):[-_a-zA-Z0-9]{1,32}$/;

function withSecret<T>(hex: string, use: (secret: Uint8Array) => T): T {
  const secret = hexToBytes(hex);
  try {
    return use(secret);
  } finally {
    secret.fill(0);
  }
}

/**
 * The contract functions the approvals state (`call.function`), by which the device decodes a call
 * whose function is not one every reader knows, as the approver's client does: a signature decodes
 * only the selector it hashes to, and the decoded arguments must then equal the message's.
 */
function statedFunctions(approvals: readonly ApprovalEvidence[]): string[] {
  const stated = new Set<string>();
  for (const a of approvals) {
    try {
      const fn = parseApprovalMessage(a.message).call?.function;
      if (fn !== undefined) stated.add(fn);
    } catch {
      // An unreadable message is refused by the quorum check with its reason.
    }
  }
  return [...stated];
}

export function freshState(): SimState {
  return { version: 1, attestationSecretKey: bytesToHex(ed25519.utils.randomSecretKey()), pools: {}, keys: {} };
}

export type SignRequest = SignCommand;

/** The device's own clock: tests in one process may give the device and the gateway the same one. */
export type Clock = () => number;

export class SimDevice {
  private state: SimState;
  /** (pool, chain) pairs that have a key: one key per pool and chain, checked without a scan. */
  private readonly keyByPoolChain = new Set<string>();
  /** Every pool's policy, parsed once, by pool id. */
  private readonly policies = new Map<string, HeldPolicy>();
  private readonly addresses = new AddressBook();
  private readonly journal: SignJournal;
  readonly attestationPublicKey: Uint8Array;
  readonly id: string;

  constructor(private readonly sealed: SealedStore, state: SimState, private readonly now: Clock = Date.now) {
    this.state = state;
    for (const k of Object.values(state.keys)) {
      this.keyByPoolChain.add(`${k.poolId}\u0000${k.chain}`);
      this.addresses.add(k);
    }
    for (const [poolId, binding] of Object.entries(state.pools)) if (binding.policy !== undefined) this.policies.set(poolId, holdPolicy(binding.policy));
    this.journal = new SignJournal(state.signed);
    this.attestationPublicKey = withSecret(state.attestationSecretKey, (s) => ed25519.getPublicKey(s));
    this.id = simDeviceId(this.attestationPublicKey);
  }

  /** The policy the device holds for a pool, or null (a state sealed before the device held policies). */
  heldPolicy(poolId: string): HeldPolicy | null {
    return this.policies.get(poolId) ?? null;
  }

  /** What the device signed for a pool in each window ending now, by its own journal (its velocity usage). */
  signedUsage(poolId: string, asset: string, windows: readonly { readonly window: string; readonly windowMs: number }[]): { window: string; windowMs: number; committed: bigint }[] {
    return this.journal.usage(poolId, asset, windows, this.now());
  }

  /** The pool's binding as the device holds it. */
  binding(poolId: string): PoolBinding | null {
    return this.state.pools[poolId] ?? null;
  }

  checkPin(pin: string): boolean {
    return this.sealed.checkPin(pin);
  }

  /** Makes a change durable (journal record) before it takes effect, and compacts the journal when due. */
  private commit(change: StateChange): void {
    this.sealed.append(change);
    applyChange(this.state, change);
    if (change.keys) {
      for (const k of Object.values(change.keys)) {
        this.keyByPoolChain.add(`${k.poolId}\u0000${k.chain}`);
        this.addresses.add(k);
      }
    }
    if (change.pools) {
      // Parsed again only when the document changed (a freeze or a change of approvers keeps it).
      for (const [poolId, binding] of Object.entries(change.pools)) {
        if (binding.policy !== undefined && this.policies.get(poolId)?.text !== binding.policy) this.policies.set(poolId, holdPolicy(binding.policy));
      }
    }
    if (change.signed) for (const [key, record] of Object.entries(change.signed)) this.journal.add(key, record);
    if (this.sealed.compactionDue()) this.sealed.save(this.state);
  }

  /** Checks a list of approvers (or admins): 1-64 distinct, valid Ed25519 keys and ids. */
  private validMembers(members: { id: string; publicKey: Uint8Array }[], threshold: number, what: string): { id: string; publicKey: string }[] {
    if (members.length === 0 || members.length > 64) throw new DeviceRefusal(Status.BAD_REQUEST, `${what}: 1 to 64 members needed`);
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > members.length) {
      throw new DeviceRefusal(Status.BAD_REQUEST, `${what}: threshold ${threshold} must be between 1 and the ${members.length} members`);
    }
    const keys = new Set<string>();
    const ids = new Set<string>();
    return members.map((a) => {
      if (!isValidApproverKey(a.publicKey)) {
        throw new DeviceRefusal(Status.BAD_REQUEST, `${what}: ${a.id}'s key is neither a 32-byte Ed25519 nor a 33-byte secp256k1 public key`);
      }
      const hex = bytesToHex(a.publicKey);
      if (keys.has(hex) || ids.has(a.id)) throw new DeviceRefusal(Status.BAD_REQUEST, `${what}: ${a.id} is listed twice`);
      keys.add(hex);
      ids.add(a.id);
      return { id: a.id, publicKey: hex };
    });
  }

  /** Binds a pool to its approvers, base threshold and policy document, once (the ceremony). */
  enrollPool(poolId: string, approvers: { id: string; publicKey: Uint8Array }[], threshold: number, policyText: string): void {
    if (!POOL_ID.test(poolId)) throw new DeviceRefusal(Status.BAD_REQUEST, `pool id "${poolId.slice(0, 80)}" is not a valid slug`);
    if (this.state.pools[poolId]) throw new DeviceRefusal(Status.ALREADY_EXISTS, `pool ${poolId} is already bound to its approvers`);
    const bound = this.validMembers(approvers, threshold, `pool ${poolId}`);
    const held = this.parsePolicy(policyText, bound.length, threshold);
    this.commit({
      pools: { [poolId]: { approvers: bound, threshold, policy: held.text, policyVersion: 1, allowlistAddedAt: enrolmentStamps(held.document), sequence: 0, frozen: false } },
    });
  }

  /** A policy document the device can hold for a pool of `members` approvers with base threshold `threshold`. */
  parsePolicy(text: string, members: number, threshold: number): HeldPolicy {
    let held: HeldPolicy;
    try {
      held = holdPolicy(text);
    } catch (error) {
      throw new DeviceRefusal(Status.BAD_REQUEST, `the policy cannot be held: ${error instanceof Error ? error.message : String(error)}`);
    }
    const tiers = held.policy.quorum.map((t) => t.approvals);
    if (Math.max(...tiers) > members) throw new DeviceRefusal(Status.BAD_REQUEST, `the policy's quorum tiers need up to ${Math.max(...tiers)} approvals, the pool has ${members} approvers`);
    if (Math.min(...tiers) !== threshold) throw new DeviceRefusal(Status.BAD_REQUEST, `the base threshold ${threshold} is not the policy's smallest tier (${Math.min(...tiers)})`);
    return held;
  }

  /**
   * Binds the admins whose quorum may later rebind pools, and the backup custodians (X25519 keys) that
   * backups may be encrypted to (none: no backup until a governed custodians change). Once per device.
   */
  enrollGovernance(admins: { id: string; publicKey: Uint8Array }[], quorum: number, custodians: readonly { id: string; publicKey: Uint8Array }[] = []): void {
    if (this.state.governance) throw new DeviceRefusal(Status.ALREADY_EXISTS, 'the admins are already enrolled');
    const bound = this.validMembers(admins, quorum, 'admins');
    const held = enrolledCustodians(custodians);
    if (isDeviceRefusal(held)) throw new DeviceRefusal(held.status, held.message);
    this.commit({ governance: { admins: bound, quorum, custodians: held, sequence: 0 } });
  }

  /** Applies a governed device-scope change (the backup custodians): hsm-sim/device-governance.ts. */
  governDevice(changeText: string, approvals: readonly ApprovalEvidence[]): void {
    const next = governDevice({ device: this.id, governance: this.state.governance, approvals }, changeText);
    if (isDeviceRefusal(next)) throw new DeviceRefusal(next.status, next.message);
    this.commit({ governance: next });
  }

  /**
   * Applies a governed change to a pool (a policy version, a change of approvers, unfreezing) once the
   * admin quorum approved exactly it, from exactly the state and sequence the device holds; then counts
   * it (its messages never apply again). The device computes the result itself.
   */
  governPool(poolId: string, changeText: string, approvals: readonly ApprovalEvidence[]): void {
    const binding = this.state.pools[poolId];
    if (!binding) throw new DeviceRefusal(Status.NOT_FOUND, `pool ${poolId.slice(0, 80)} is not enrolled`);
    const governance = this.state.governance;
    if (!governance) throw new DeviceRefusal(Status.QUORUM_REFUSED, 'no admins are enrolled in this device: pools cannot be changed');
    const held = this.policies.get(poolId) ?? null;
    let applied: { binding: PoolBinding; held: HeldPolicy | null };
    let parsed: { change: PoolChange; hash: string };
    try {
      parsed = parsePoolChange(changeText);
      applied = applyPoolChange(binding, held, parsed.change, this.now());
    } catch (error) {
      if (error instanceof PoolChangeError) throw new DeviceRefusal(Status.BAD_REQUEST, `pool ${poolId}: ${error.message}`);
      throw error;
    }
    if (parsed.change.action === 'approvers') this.validMembers(applied.binding.approvers.map((a) => ({ id: a.id, publicKey: hexToBytes(a.publicKey) })), applied.binding.threshold, `pool ${poolId}`);
    const refusal = governanceRefusal({
      device: this.id,
      scope: 'pool',
      poolId,
      action: parsed.change.action,
      change: parsed.hash,
      sequence: binding.sequence ?? 0,
      before: poolSummary(binding, held),
      after: poolSummary(applied.binding, applied.held),
      governance,
      approvals,
      required: governance.quorum,
    });
    if (refusal) throw new DeviceRefusal(refusal.status, refusal.message);
    this.commit({ pools: { [poolId]: applied.binding } });
  }

  /**
   * Freezes a pool at once on one enrolled admin's signed freeze message (break glass); a frozen pool
   * stays frozen. The freeze counts in the pool's governance sequence, so that nothing approved before
   * it (an unfreeze held back, say) applies after it: the admins approve again, knowing of the freeze.
   */
  freezePool(poolId: string, approvals: readonly ApprovalEvidence[]): void {
    const binding = this.state.pools[poolId];
    if (!binding) throw new DeviceRefusal(Status.NOT_FOUND, `pool ${poolId.slice(0, 80)} is not enrolled`);
    const governance = this.state.governance;
    if (!governance) throw new DeviceRefusal(Status.QUORUM_REFUSED, 'no admins are enrolled in this device: no one can freeze a pool');
    const before = poolSummary(binding, this.policies.get(poolId) ?? null);
    const refusal = governanceRefusal({
      device: this.id,
      scope: 'pool',
      poolId,
      action: 'freeze',
      change: sha256Canonical({ action: 'freeze' }),
      sequence: binding.sequence ?? 0,
      before,
      after: before,
      governance,
      approvals,
      required: 1,
    });
    if (refusal) throw new DeviceRefusal(refusal.status, refusal.message);
    // A freeze counts in the pool's sequence: an unfreeze (or any change) approved before it no longer applies after it.
    if (binding.frozen !== true) this.commit({ pools: { [poolId]: { ...binding, frozen: true, sequence: (binding.sequence ?? 0) + 1 } } });
  }

  /** What a governance message must name as `before` and `sequence`: a pool's (by id) or, for "", the device's. */
  governanceState(poolId: string): { summary: PoolSummary | DeviceSummary; sequence: number } {
    if (poolId === '') {
      return { summary: deviceSummary(this.state.governance), sequence: this.state.governance?.sequence ?? 0 };
    }
    const binding = this.state.pools[poolId];
    if (!binding) throw new DeviceRefusal(Status.NOT_FOUND, `pool ${poolId.slice(0, 80)} is not enrolled`);
    return { summary: poolSummary(binding, this.policies.get(poolId) ?? null), sequence: binding.sequence ?? 0 };
  }

  generateKey(poolId: string, chain: string, curve: CurveName): KeyRecord {
    if (!this.state.pools[poolId]) throw new DeviceRefusal(Status.NOT_FOUND, `pool ${poolId} is not enrolled; enroll it with its approvers first`);
    if (!CHAIN_ID.test(chain)) throw new DeviceRefusal(Status.BAD_REQUEST, `chain "${chain.slice(0, 80)}" is not a CAIP-2 chain id`);
    const expected: CurveName = chain.startsWith('solana:') ? 'ed25519' : 'secp256k1';
    if (curve !== expected) throw new DeviceRefusal(Status.BAD_REQUEST, `keys on ${chain} use ${expected}, not ${curve}`);
    if (this.keyByPoolChain.has(`${poolId}\u0000${chain}`)) throw new DeviceRefusal(Status.ALREADY_EXISTS, `pool ${poolId} already has a key on ${chain}; a pool has one key per chain`);
    try {
      parseChainId(chain);
    } catch (error) {
      throw new DeviceRefusal(Status.BAD_REQUEST, `chain "${chain.slice(0, 80)}": ${error instanceof Error ? error.message : String(error)}`);
    }
    const secret = curve === 'secp256k1' ? secp256k1.utils.randomSecretKey() : ed25519.utils.randomSecretKey();
    const publicKey = curve === 'secp256k1' ? secp256k1.getPublicKey(secret, true) : ed25519.getPublicKey(secret);
    try {
      // The device indexes every address of every key (commingling): a key whose address it cannot derive is not made.
      everyAddressOfKey(parseChainId(chain), bytesToHex(publicKey));
    } catch (error) {
      secret.fill(0);
      throw new DeviceRefusal(Status.BAD_REQUEST, `chain ${chain}: the device cannot derive the key's address (${error instanceof Error ? error.message : String(error)})`);
    }
    const handle = 'k_' + randomBytes(12).toString('hex');
    const entry: KeyEntry = { poolId, chain, curve, secretKey: bytesToHex(secret), publicKey: bytesToHex(publicKey) };
    secret.fill(0);
    this.commit({ keys: { [handle]: entry } });
    return { handle, poolId, chain, curve, publicKey };
  }

  getKey(handle: string): KeyRecord {
    const k = this.state.keys[handle];
    if (!k) throw new DeviceRefusal(Status.NOT_FOUND, `no key with handle ${handle.slice(0, 80)}`);
    return { handle, poolId: k.poolId, chain: k.chain, curve: k.curve, publicKey: hexToBytes(k.publicKey) };
  }

  listKeys(): KeyRecord[] {
    return Object.keys(this.state.keys).sort().map((h) => this.getKey(h));
  }

  /**
   * Signs one transaction once the quorum holds and the pool's policy allows it (SPEC rules 2, 3, 5;
   * section 5). The device decodes `unsignedTx` itself with the pool key (it must spend from that key),
   * derives what to sign (the Ethereum signing hash, every Bitcoin input's BIP-143 / BIP-341 sighash,
   * the Solana message) and the digest, and then, on its own decoding, clock and journal:
   *
   * 1. a frozen pool signs nothing (FROZEN);
   * 2. the same transaction signed before returns the same signatures (counted once);
   * 3. the policy it holds decides: allowed asset, per-transaction maximum, allowlist and cooling-off,
   *    no commingling, fee cap, contract calls, velocity windows over what it signed (POLICY_REFUSED);
   * 4. the approvals: each names exactly this transaction and states what it does, distinct enrolled
   *    approvers, at least the policy's tier for the amount (QUORUM_REFUSED, TRANSACTION_MISMATCH);
   * 5. sign-once: another signed transaction spending the same nonce or output is refused unless this
   *    one is its approved replacement, and a request signs one transaction (POLICY_REFUSED;
   *    hsm-sim/sign-journal.ts checks what a replacement names);
   * 6. the time lock: from the first time it saw this complete quorum, it waits the policy's delay and
   *    answers when to come back (TIMELOCKED);
   * then it signs, and records the signature durably before it answers.
   */
  sign(req: SignRequest): { scheme: SchemeName; signatures: Uint8Array[]; recoveries: (0 | 1 | null)[] } {
    const key = this.state.keys[req.handle];
    if (!key) throw new DeviceRefusal(Status.NOT_FOUND, `no key with handle ${req.handle.slice(0, 80)}`);
    if (key.poolId !== req.poolId) throw new DeviceRefusal(Status.QUORUM_REFUSED, `key ${req.handle} belongs to pool ${key.poolId}, not ${req.poolId}`);
    const binding = this.state.pools[key.poolId];
    if (!binding) throw new DeviceRefusal(Status.INTERNAL, `pool ${key.poolId} has a key but no binding`);
    const held = this.policies.get(key.poolId);
    if (!held) throw new DeviceRefusal(Status.POLICY_REFUSED, `pool ${key.poolId} has no policy in this device: bind one by a governed policy change before it signs`);
    let decoded: DecodedTransaction;
    try {
      decoded = decodeTransaction(key.chain, req.unsignedTx, hexToBytes(key.publicKey), { functions: statedFunctions(req.approvals) });
    } catch (error) {
      throw new DeviceRefusal(Status.BAD_REQUEST, `the device cannot decode the transaction for ${key.chain}: ${error instanceof Error ? error.message : String(error)}`);
    }
    const curveOfScheme: CurveName = decoded.scheme === 'ed25519' ? 'ed25519' : 'secp256k1';
    if (curveOfScheme !== key.curve) throw new DeviceRefusal(Status.BAD_REQUEST, `a ${key.chain} transaction cannot be signed with a ${key.curve} key`);
    if (binding.frozen === true) throw new DeviceRefusal(Status.FROZEN, `pool ${key.poolId} is frozen in the device: nothing is signed until the admin quorum unfreezes it`);

    const txKey = transactionKey(key.poolId, key.chain, bytesToHex(decoded.digest));
    const now = this.now();
    const signedBefore = this.journal.get(txKey);
    const decision = deviceDecision({
      poolId: key.poolId,
      chain: key.chain,
      binding,
      held,
      unsignedTx: req.unsignedTx,
      decoded,
      addresses: this.addresses,
      // A transaction signed before returns its signatures below, before the policy's reasons are read: only its tier counts.
      usage: (windows) => this.journal.usage(key.poolId, decoded.asset, windows, now),
      now,
    });
    const quorum = checkQuorum({ poolId: key.poolId, chain: key.chain, unsignedTx: req.unsignedTx, decoded, binding, approvals: req.approvals, required: decision.requiredApprovals });
    if (isRefusal(quorum)) throw new DeviceRefusal(quorum.status, quorum.message);
    if (signedBefore) return { scheme: signedBefore.scheme, signatures: signedBefore.signatures.map((x) => hexToBytes(x)), recoveries: [...signedBefore.recoveries] };
    const denials = decision.reasons.filter((r) => r.code !== 'pool_frozen');
    if (denials.length > 0) throw new DeviceRefusal(Status.POLICY_REFUSED, `pool ${key.poolId}'s policy refuses it: ${denials.map((r) => `${r.code}: ${r.message}`).join('; ')}`);
    const spends = [decoded.signOnceKey, ...decoded.claims];
    const signOnce = this.journal.signOnceRefusal(key.poolId, key.chain, txKey, spends, quorum.requestId, quorum.replaces);
    if (signOnce !== null) throw new DeviceRefusal(Status.POLICY_REFUSED, signOnce);
    if (decision.timelockUntil !== null) {
      const delay = decision.timelockUntil - now;
      const seen = this.state.quorumSeen?.[txKey];
      if (seen === undefined) this.commit({ quorumSeen: { [txKey]: now } });
      const until = (seen ?? now) + delay;
      if (now < until) throw new TimeLocked(`time-locked by pool ${key.poolId}'s policy (${formatDuration(delay)} from the complete quorum): the device signs from ${new Date(until).toISOString()}`, until);
    }

    const { scheme, payload } = decoded;
    const signed = withSecret(key.secretKey, (secret) => {
      if (scheme === 'ed25519') return { scheme, signatures: [ed25519.sign(payload, secret)], recoveries: [null] };
      const signatures: Uint8Array[] = [];
      const recoveries: (0 | 1 | null)[] = [];
      for (let i = 0; i < payload.length; i += 32) {
        const hash = payload.subarray(i, i + 32);
        if (scheme === 'ecdsa-secp256k1') {
          // RFC 6979 deterministic nonce, low-S (libsecp256k1).
          const sig = signRecoverable(hash, secret);
          signatures.push(sig.signature);
          recoveries.push(sig.recovery === 1 ? 1 : 0);
        } else {
          // Taproot key-path: BIP-340 by the tweaked key, whose x-only public key is the output key.
          signatures.push(signTaprootKeyPath(hash, secret));
          recoveries.push(null);
        }
      }
      return { scheme, signatures, recoveries };
    });
    const record: SignedRecord = {
      poolId: key.poolId,
      chain: key.chain,
      asset: decoded.asset,
      amount: decoded.amount.toString(),
      at: now,
      requestId: quorum.requestId,
      spends,
      ...(quorum.replaces !== null ? { replaces: quorum.replaces } : {}),
      scheme,
      signatures: signed.signatures.map((x) => bytesToHex(x)),
      recoveries: signed.recoveries,
    };
    // Durable before it is answered: a crash after this never lets the amount count twice or the nonce be reused.
    this.commit({ signed: { [txKey]: record } });
    return signed;
  }

  /**
   * Proof of control: signs `challenge` with a pool key in its chain's message format
   * (common/control-message.ts) once the admin quorum approved exactly this challenge for this pool.
   */
  signMessage(handle: string, poolId: string, challenge: string, approvals: readonly ApprovalEvidence[]): { signature: Uint8Array; recovery: number | null } {
    const key = this.state.keys[handle];
    if (!key) throw new DeviceRefusal(Status.NOT_FOUND, `no key with handle ${handle.slice(0, 80)}`);
    if (key.poolId !== poolId) throw new DeviceRefusal(Status.QUORUM_REFUSED, `key ${handle} belongs to pool ${key.poolId}, not ${poolId}`);
    const problem = challengeProblem(challenge);
    if (problem) throw new DeviceRefusal(Status.BAD_REQUEST, problem);
    const binding = this.state.pools[key.poolId];
    const governance = this.state.governance;
    if (!binding) throw new DeviceRefusal(Status.INTERNAL, `pool ${key.poolId} has a key but no binding`);
    if (!governance) throw new DeviceRefusal(Status.QUORUM_REFUSED, 'no admins are enrolled in this device: no proof of control can be approved');
    if (binding.frozen === true) throw new DeviceRefusal(Status.FROZEN, `pool ${key.poolId} is frozen in the device`);
    const summary = poolSummary(binding, this.policies.get(key.poolId) ?? null);
    const refusal = governanceRefusal({
      device: this.id,
      scope: 'pool',
      poolId,
      action: 'attest-control',
      change: sha256Canonical({ action: 'attest-control', challenge }),
      sequence: binding.sequence ?? 0,
      before: summary,
      after: summary,
      governance,
      approvals,
      required: governance.quorum,
    });
    if (refusal) throw new DeviceRefusal(refusal.status, refusal.message);
    const format = controlFormat(key.chain);
    const input = controlSigningInput(format, challenge);
    return withSecret(key.secretKey, (secret) => {
      if (format === 'ed25519') return { signature: ed25519.sign(input, secret), recovery: null };
      const sig = signRecoverable(input, secret);
      return { signature: sig.signature, recovery: sig.recovery };
    });
  }

  /**
   * The whole state, encrypted under a fresh wrapping key split among custodians this device holds,
   * each share encrypted to its custodian, once the admin quorum approved exactly these custodians and
   * this threshold (hsm-sim/device-governance.ts authorizeExport). The export is counted before the
   * backup is made and the backup holds that count, so its approvals never export again, here or from
   * a device restored from it. No share ever leaves in the clear.
   */
  async exportBackup(threshold: number, custodians: readonly Uint8Array[], approvals: readonly ApprovalEvidence[]): Promise<{ backup: string; shares: string[] }> {
    const counted = authorizeExport({ device: this.id, governance: this.state.governance, approvals }, threshold, custodians);
    if (isDeviceRefusal(counted)) throw new DeviceRefusal(counted.status, counted.message);
    this.commit({ governance: counted });
    try {
      const made = await createBackup(this.state, this.id, threshold, custodians);
      return { backup: JSON.stringify(made.backup, null, 2), shares: made.shares.map((s) => JSON.stringify(s, null, 2)) };
    } catch (error) {
      if (error instanceof BackupFormatError) throw new DeviceRefusal(Status.BAD_REQUEST, error.message);
      throw error;
    }
  }

  /**
   * Replaces this (fresh) device's state with a backup's, sealed under this device's PIN: the restored
   * device has the original's attestation key, id, admins, bindings and keys. Returns the new device.
   */
  async importBackup(backup: string, shares: readonly Uint8Array[]): Promise<SimDevice> {
    if (Object.keys(this.state.pools).length > 0 || Object.keys(this.state.keys).length > 0) {
      throw new DeviceRefusal(Status.ALREADY_EXISTS, 'this device already holds pools or keys: restore only into a fresh simulator');
    }
    let state: SimState;
    try {
      state = await openBackup(backup, shares);
    } catch (error) {
      if (error instanceof BackupFormatError) throw new DeviceRefusal(Status.BAD_REQUEST, error.message);
      throw error;
    }
    this.sealed.save(state);
    return new SimDevice(this.sealed, state);
  }

  /**
   * Attests a statement the device builds from its own state (hsm-sim/attestation.ts): a key it holds
   * with its pool's binding and policy (by handle), or its governance. No caller bytes are signed.
   */
  attest(subject: { readonly subject: 'key'; readonly handle: string } | { readonly subject: 'device' }): { statement: string; signature: Uint8Array } {
    const device = { id: this.id, model: MODEL, firmware: FIRMWARE, now: this.now() };
    let statement: AttestationStatement;
    if (subject.subject === 'key') {
      // Own keys only: a handle such as "__proto__" names no key.
      const key = Object.hasOwn(this.state.keys, subject.handle) ? this.state.keys[subject.handle] : undefined;
      if (!key) throw new DeviceRefusal(Status.NOT_FOUND, `no key with handle ${subject.handle.slice(0, 80)}`);
      const binding = this.state.pools[key.poolId];
      if (!binding) throw new DeviceRefusal(Status.INTERNAL, `pool ${key.poolId} has a key but no binding`);
      statement = keyStatement(device, subject.handle, key, binding, this.policies.get(key.poolId) ?? null);
    } else {
      statement = deviceStatement(device, this.state.governance, SIM_ENFORCES);
    }
    return withSecret(this.state.attestationSecretKey, (s) => signStatement(statement, s));
  }
}
