/**
 * The device a compromised gateway attacks (SPEC rule 2, section 5; ARCHITECTURE "the device is not the
 * gateway's servant"): the real simulator process, and a raw link to it that holds the PIN and speaks
 * the wire protocol directly (test/helpers/raw-sim-link.ts), skipping every check the gateway makes.
 * Pool A is bound to alice, bob and carol (2 of 3), pool B to bob and carol (2 of 2), pool C to dave
 * alone; each pool has a key on Sepolia, Bitcoin regtest and Solana, generated inside the device.
 */
import { openPolicy } from '../../helpers/open-policy.js';
import { expect } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { canonicalApprovalMessage, type ApprovalMessage } from '../../../common/approval-message.js';
import { STATUS_NAMES, type ApprovalRecord, type KeyRecord, type Status } from '../../../common/sim-protocol.js';
import { startSim, type SimProcess } from '../../helpers/sim-process.js';
import { openRawSimLink, type RawSimLink, type SignAnswer } from '../../helpers/raw-sim-link.js';
import { APPROVERS, BITCOIN_REGTEST, SEPOLIA, SOLANA_MAINNET } from '../../hsm-sim/fixtures.js';

/** An approver key nobody enrolled in pool A: dave holds pool C, mallory holds nothing. */
export const OUTSIDERS = {
  dave: ed25519.utils.randomSecretKey(),
  mallory: ed25519.utils.randomSecretKey(),
} as const;
export const outsiderPublicKey = (who: keyof typeof OUTSIDERS): Uint8Array => ed25519.getPublicKey(OUTSIDERS[who]);

/** An outsider's own, valid signature over the canonical text of `message`. */
export function outsiderApproval(who: keyof typeof OUTSIDERS, message: ApprovalMessage): ApprovalRecord {
  const text = canonicalApprovalMessage(message);
  return { publicKey: outsiderPublicKey(who), message: text, signature: ed25519.sign(new TextEncoder().encode(text), OUTSIDERS[who]) };
}

export interface PoolKeys {
  readonly eth: KeyRecord;
  readonly btc: KeyRecord;
  readonly sol: KeyRecord;
}

export interface DeviceUnderAttack {
  readonly sim: SimProcess;
  readonly link: RawSimLink;
  readonly poolA: PoolKeys;
  readonly poolB: PoolKeys;
  /** Hex public keys, as the fixtures' transaction builders take them. */
  readonly hex: (key: KeyRecord) => string;
  stop(): Promise<void>;
}

export async function startDeviceUnderAttack(): Promise<DeviceUnderAttack> {
  const sim = await startSim();
  const link = await openRawSimLink(sim.port, sim.pin);
  const members = (ids: string[]) => APPROVERS.filter((a) => ids.includes(a.id)).map((a) => ({ id: a.id, publicKey: hexToBytes(a.publicKey) }));
  // Pool A's policy allows the fixture token and an unlimited approve on it: the suites' positive
  // controls sign that, and every refusal they test is of what the approvals say, not of the policy.
  const TEST_TOKEN = '0x1c7d4b196cb0c7b01d743fbc6116a902379c7238';
  const poolAPolicy = { ...openPolicy(2, ['ETH', 'BTC', 'SOL', `erc20:${TEST_TOKEN}`]), contractCalls: [{ contract: TEST_TOKEN, selector: '0x095ea7b3', unlimited: true }] };
  await link.enrollPool('pool-a', members(['alice', 'bob', 'carol']), 2, poolAPolicy);
  await link.enrollPool('pool-b', members(['bob', 'carol']), 2, openPolicy(2));
  await link.enrollPool('pool-c', [{ id: 'dave', publicKey: outsiderPublicKey('dave') }], 1, openPolicy(1));
  const keysOf = async (pool: string): Promise<PoolKeys> => ({
    eth: await link.generateKey(pool, SEPOLIA, 'secp256k1'),
    btc: await link.generateKey(pool, BITCOIN_REGTEST, 'secp256k1'),
    sol: await link.generateKey(pool, SOLANA_MAINNET, 'ed25519'),
  });
  const poolA = await keysOf('pool-a');
  const poolB = await keysOf('pool-b');
  return {
    sim,
    link,
    poolA,
    poolB,
    hex: (key) => bytesToHex(key.publicKey),
    async stop() {
      link.close();
      await sim.stop();
    },
  };
}

/** The device refused with exactly `status` (and a message matching `why`), and no signature came back. */
export function expectRefused(answer: SignAnswer, status: Status, why?: RegExp): void {
  expect({ status: answer.statusName, signed: answer.result !== null }).toEqual({ status: STATUS_NAMES[status], signed: false });
  if (why) expect(answer.message).toMatch(why);
}

/** The device signed; returns what it answered. */
export function expectSigned(answer: SignAnswer): NonNullable<SignAnswer['result']> {
  expect({ status: answer.statusName, message: answer.message }).toEqual({ status: 'OK', message: null });
  return answer.result as NonNullable<SignAnswer['result']>;
}
