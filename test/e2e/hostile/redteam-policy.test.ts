/**
 * A compromised gateway against the real simulator's sign-once and velocity records (SPEC rules 2 and
 * 5): it holds the PIN, talks to the device directly (test/helpers/raw-sim-link.ts) and gets genuine
 * approvals of honest messages, since every message here says truthfully what its transaction does.
 * What an approver cannot check from the message is the request bookkeeping around it: which request
 * id it carries and which signed request it claims to replace. The device must not let either of
 * those take an amount out of the pool's velocity windows while both transactions stay valid on chain:
 * a "replacement" that does not conflict with what it replaces, a request that replaces itself, a
 * second transaction under a signed request's id, a replacement that also double-spends a third
 * request's output, and a second replacement of one request are all refused with no signature.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { buildEthereumTransfer } from '../../../common/chains/ethereum/transaction.js';
import type { PolicyDocument } from '../../../common/policy/policy.js';
import {
  encodeFreezePoolCommand,
  encodeGovernPoolCommand,
  Opcode,
  Status,
  STATUS_NAMES,
  type ApprovalRecord,
  type KeyRecord,
} from '../../../common/sim-protocol.js';
import type { PoolGovernanceMessage } from '../../../common/governance-message.js';
import { adminApproval, poolGovernanceMessage, readGovernanceState, type HeldState } from '../../helpers/governance-fixtures.js';
import { createSimDevice } from '../../../src/devices/sim/client.js';
import { APPROVERS, ETH_DESTINATION, ETH_FEES, SEPOLIA, BITCOIN_REGTEST, approval, bitcoinTx, messageFor, utxo, type TestTransaction } from '../../hsm-sim/fixtures.js';
import { openRawSimLink, type RawSimLink } from '../../helpers/raw-sim-link.js';
import { startSim, type SimProcess } from '../../helpers/sim-process.js';
import { expectRefused, expectSigned } from './device-under-attack.js';

const ETH = 10n ** 18n;
const BTC = 100_000_000n;

let sim: SimProcess;
let link: RawSimLink;
let deviceId: string;

const members = APPROVERS.map((a) => ({ id: a.id, publicKey: hexToBytes(a.publicKey) }));

/** 2 of 3; at most 2 ETH and 0.1 BTC a day. */
function dailyLimits(): PolicyDocument {
  return {
    quorum: [{ approvals: 2 }],
    assets: {
      ETH: { limits: [{ window: '24h', max: (2n * ETH).toString() }] },
      BTC: { limits: [{ window: '24h', max: (BTC / 10n).toString() }] },
    },
  };
}

interface Pool {
  readonly id: string;
  readonly eth: KeyRecord;
  readonly btc: KeyRecord;
}

let counter = 0;
/** A fresh pool of its own (its own velocity windows), with a Sepolia and a regtest key. */
async function freshPool(): Promise<Pool> {
  const id = `pool-r${++counter}`;
  await link.enrollPool(id, members, 2, dailyLimits());
  return { id, eth: await link.generateKey(id, SEPOLIA, 'secp256k1'), btc: await link.generateKey(id, BITCOIN_REGTEST, 'secp256k1') };
}

beforeAll(async () => {
  sim = await startSim();
  const client = createSimDevice({ url: sim.url, pin: sim.pin });
  try {
    await client.enrollGovernance(APPROVERS, 2);
    deviceId = (await client.info()).id;
  } finally {
    await client.close();
  }
  link = await openRawSimLink(sim.port, sim.pin);
}, 60_000);

afterAll(async () => {
  link?.close();
  await sim?.stop();
});

function eth(nonce: bigint, amount: bigint, maxFeePerGas: bigint = ETH_FEES.maxFeePerGas): TestTransaction {
  const p = buildEthereumTransfer({
    chainId: 11155111n,
    nonce,
    gasLimit: 21_000n,
    fees: { ...ETH_FEES, maxFeePerGas },
    intent: { asset: 'ETH', recipient: ETH_DESTINATION, amount },
  });
  return { chain: SEPOLIA, unsignedTx: p.unsignedTx, asset: 'ETH', amount, to: p.transfer.intent.recipient, maxFee: p.maxFee, digest: p.digest };
}

/** Genuine approvals by alice and bob of an honest message about `tx`, with the bookkeeping the gateway chose. */
function approvals(pool: Pool, tx: TestTransaction, bookkeeping: { requestId?: string; replaces?: string } = {}): ApprovalRecord[] {
  const m = messageFor(tx, { pool: pool.id, requestId: bookkeeping.requestId ?? randomUUID(), ...(bookkeeping.replaces !== undefined ? { replaces: bookkeeping.replaces } : {}) });
  return ['alice', 'bob'].map((who) => approval(who, m));
}

const sign = (pool: Pool, key: KeyRecord, tx: TestTransaction, records: ApprovalRecord[]) => link.sign({ handle: key.handle, poolId: pool.id, unsignedTx: tx.unsignedTx, approvals: records });

describe('a "replacement" that replaces nothing', () => {
  it('when a withdrawal on another nonce names a signed request as the one it replaces, then POLICY_REFUSED not_a_replacement, and the signed amount keeps counting', async () => {
    const pool = await freshPool();
    const first = eth(0n, ETH);
    expectSigned(await sign(pool, pool.eth, first, approvals(pool, first, { requestId: 'w-1' })));
    // Nonce 1 does not conflict with nonce 0: both would be mined, and once the second was signed the
    // device would stop counting the first, leaving room for a third 1 ETH in a 2 ETH day.
    const second = eth(1n, ETH);
    expectRefused(await sign(pool, pool.eth, second, approvals(pool, second, { replaces: 'w-1' })), Status.POLICY_REFUSED, /not_a_replacement: .*w-1/);
    expectSigned(await sign(pool, pool.eth, second, approvals(pool, second)));
    const third = eth(2n, ETH);
    expectRefused(await sign(pool, pool.eth, third, approvals(pool, third)), Status.POLICY_REFUSED, /velocity_exceeded/);
  });

  it('when a withdrawal names its own request id as the one it replaces, then POLICY_REFUSED not_a_replacement (it would never count in a window)', async () => {
    const pool = await freshPool();
    const tx = eth(0n, 2n * ETH);
    expectRefused(await sign(pool, pool.eth, tx, approvals(pool, tx, { requestId: 'w-self', replaces: 'w-self' })), Status.POLICY_REFUSED, /not_a_replacement/);
    expectSigned(await sign(pool, pool.eth, tx, approvals(pool, tx, { requestId: 'w-self' })));
    const more = eth(1n, 1n);
    expectRefused(await sign(pool, pool.eth, more, approvals(pool, more)), Status.POLICY_REFUSED, /velocity_exceeded/);
  });

  it('when a Bitcoin "replacement" spends none of the outputs the named request spent, then POLICY_REFUSED not_a_replacement', async () => {
    const pool = await freshPool();
    const btcKey = bytesToHex(pool.btc.publicKey);
    const first = bitcoinTx(btcKey, { utxos: [utxo(6_000_000n)], amount: 5_000_000n });
    expectSigned(await sign(pool, pool.btc, first, approvals(pool, first, { requestId: 'b-1' })));
    const second = bitcoinTx(btcKey, { utxos: [utxo(6_000_000n)], amount: 5_000_000n });
    expectRefused(await sign(pool, pool.btc, second, approvals(pool, second, { replaces: 'b-1' })), Status.POLICY_REFUSED, /not_a_replacement/);
  });

  it('when the fee bump of a signed withdrawal names it (same nonce), then the device signs it and the replaced amount stops counting (the positive control)', async () => {
    const pool = await freshPool();
    const first = eth(0n, ETH);
    expectSigned(await sign(pool, pool.eth, first, approvals(pool, first, { requestId: 'w-1' })));
    const bump = eth(0n, ETH, 2n * ETH_FEES.maxFeePerGas);
    expectSigned(await sign(pool, pool.eth, bump, approvals(pool, bump, { requestId: 'w-2', replaces: 'w-1' })));
    // Only one of the two can be mined: 1 ETH counts, not 2, so 1 ETH more fits the day, and then nothing.
    const more = eth(1n, ETH);
    expectSigned(await sign(pool, pool.eth, more, approvals(pool, more)));
    const oneWei = eth(2n, 1n);
    expectRefused(await sign(pool, pool.eth, oneWei, approvals(pool, oneWei)), Status.POLICY_REFUSED, /velocity_exceeded/);
  });
});

describe('one request, one transaction', () => {
  it('when a second transaction on another nonce comes under the request id of a signed one, then POLICY_REFUSED sign_once and no signature', async () => {
    const pool = await freshPool();
    const first = eth(0n, ETH);
    expectSigned(await sign(pool, pool.eth, first, approvals(pool, first, { requestId: 'w-a' })));
    // Were it signed, a fee bump of the first naming "w-a" would take both out of the window.
    const second = eth(1n, ETH);
    expectRefused(await sign(pool, pool.eth, second, approvals(pool, second, { requestId: 'w-a' })), Status.POLICY_REFUSED, /sign_once: request w-a already signed another transaction/);
  });

  it('when the same signed transaction comes again under its request id, then the same signature comes back (not a second transaction)', async () => {
    const pool = await freshPool();
    const tx = eth(0n, ETH);
    const first = expectSigned(await sign(pool, pool.eth, tx, approvals(pool, tx, { requestId: 'w-a' })));
    const again = expectSigned(await sign(pool, pool.eth, tx, approvals(pool, tx, { requestId: 'w-a' })));
    expect(bytesToHex(again.signatures[0]!)).toBe(bytesToHex(first.signatures[0]!));
  });
});

describe('Bitcoin replacements', () => {
  it('when a replacement of one signed PSBT also spends an output of another signed PSBT, then POLICY_REFUSED sign_once naming that other request', async () => {
    const pool = await freshPool();
    const btcKey = bytesToHex(pool.btc.publicKey);
    const u0 = utxo(5_000_000n);
    const u1 = utxo(5_000_000n);
    const r0 = bitcoinTx(btcKey, { utxos: [u0], amount: 4_000_000n });
    const r1 = bitcoinTx(btcKey, { utxos: [u1], amount: 4_000_000n });
    expectSigned(await sign(pool, pool.btc, r0, approvals(pool, r0, { requestId: 'b-0' })));
    expectSigned(await sign(pool, pool.btc, r1, approvals(pool, r1, { requestId: 'b-1' })));
    // A tiny "replacement" of b-1 that also spends b-0's output: b-0 and b-1 stay valid together on
    // chain (they spend different outputs), and b-1's 0.04 BTC would stop counting.
    // b-1's output comes first: the device must look at every output spent, not the first it finds.
    const r2 = bitcoinTx(btcKey, { utxos: [u1, u0], amount: 100_000n });
    expectRefused(await sign(pool, pool.btc, r2, approvals(pool, r2, { replaces: 'b-1' })), Status.POLICY_REFUSED, /sign_once: request b-0/);
  });

  it('when a request already replaced is named by a second replacement (spending its other output), then POLICY_REFUSED: only its replacement may be replaced', async () => {
    const pool = await freshPool();
    const btcKey = bytesToHex(pool.btc.publicKey);
    const u1 = utxo(3_000_000n);
    const u2 = utxo(3_000_000n);
    const r1 = bitcoinTx(btcKey, { utxos: [u1, u2], amount: 5_000_000n });
    expectSigned(await sign(pool, pool.btc, r1, approvals(pool, r1, { requestId: 'b-1' })));
    const r2 = bitcoinTx(btcKey, { utxos: [u1, utxo(3_000_000n)], amount: 5_000_000n });
    expectSigned(await sign(pool, pool.btc, r2, approvals(pool, r2, { requestId: 'b-2', replaces: 'b-1' })));
    // r2 and r3 spend different outputs: both would be mined, as two "replacements" of one request.
    const r3 = bitcoinTx(btcKey, { utxos: [u2, utxo(3_000_000n)], amount: 4_000_000n });
    expectRefused(await sign(pool, pool.btc, r3, approvals(pool, r3, { requestId: 'b-3', replaces: 'b-1' })), Status.POLICY_REFUSED, /not_a_replacement: request b-1 was replaced already by b-2/);
  });
});

const governanceState = (poolId: string) => readGovernanceState(link, poolId);
const governanceMessage = (poolId: string, action: PoolGovernanceMessage['action'], state: HeldState) => poolGovernanceMessage({ device: deviceId, poolId, action, state, proposalId: `p-${action}-${randomUUID()}` });

describe('break glass', () => {
  // A freeze counts in the pool's governance sequence in the device, and the gateway names the device's
  // sequence in its messages: an unfreeze the admins approved before the freeze (of a freeze only the
  // gateway held, say) no longer applies after it.
  it('when the gateway holds back an unfreeze the admins approved before an admin\'s break-glass freeze, then that unfreeze is STALE_GOVERNANCE and the pool stays frozen', async () => {
    const pool = await freshPool();
    const before = await governanceState(pool.id);
    const unfreeze = governanceMessage(pool.id, 'unfreeze', before);
    const heldBack = [adminApproval('alice', unfreeze), adminApproval('bob', unfreeze)];
    const freeze = governanceMessage(pool.id, 'freeze', before);
    const frozen = await link.request(Opcode.FREEZE_POOL, encodeFreezePoolCommand({ poolId: pool.id, approvals: [adminApproval('carol', freeze)] }));
    expect(STATUS_NAMES[frozen.status]).toBe('OK');
    const lifted = await link.request(Opcode.GOVERN_POOL, encodeGovernPoolCommand({ poolId: pool.id, change: JSON.stringify({ action: 'unfreeze' }), approvals: heldBack }));
    expect(STATUS_NAMES[lifted.status]).toBe('STALE_GOVERNANCE');
    const tx = eth(0n, 1n);
    expectRefused(await sign(pool, pool.eth, tx, approvals(pool, tx)), Status.FROZEN);
  });
});
