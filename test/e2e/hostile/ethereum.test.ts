/**
 * A compromised gateway against the real simulator, Ethereum (SPEC rule 2, section 5; EIP-1559): it
 * holds the PIN and honest approvals from alice and bob, and tries to get a signature for a transaction
 * they did not approve, by swapping the transaction, by a message whose fields lie about its
 * transaction, by reusing one approval set for other transactions, and by a contract call whose message
 * misstates the call. Each must be refused with its status and no signature; the honest set signs, and
 * ethers (code we did not write) recovers the pool's address from the signed transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Interface, Signature, Transaction, computeAddress, getAddress, parseEther } from 'ethers';
import { canonicalize } from 'json-canonicalize';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { decodeTransaction } from '../../../common/chains/adapters.js';
import { buildEthereumTransfer } from '../../../common/chains/ethereum/transaction.js';
import type { DecodedArgument, DecodedCall } from '../../../common/chains/decoded-transaction.js';
import { Status, type ApprovalRecord, type SignResult } from '../../../common/sim-protocol.js';
import { ETH_DESTINATION, ETH_FEES, SEPOLIA, approval, ethereumTx, messageFor, type TestTransaction } from '../../hsm-sim/fixtures.js';
import { expectRefused, expectSigned, startDeviceUnderAttack, type DeviceUnderAttack } from './device-under-attack.js';

let device: DeviceUnderAttack;
beforeAll(async () => {
  device = await startDeviceUnderAttack();
});
afterAll(async () => {
  await device?.stop();
});

const ATTACKER = getAddress('0x' + 'ba'.repeat(20));
const TOKEN = getAddress('0x1c7d4b196cb0c7b01d743fbc6116a902379c7238');
const DEX = getAddress('0x' + '5e'.repeat(20));
const MAX_UINT256 = (1n << 256n) - 1n;

/** "0.5 ETH to X": what alice and bob were shown and approved. */
const honest = ethereumTx({ nonce: 0n, to: ETH_DESTINATION, amount: parseEther('0.5') });
/** What the attacker wants signed instead: 1000 ETH to itself, same nonce. */
const theft = ethereumTx({ nonce: 0n, to: ATTACKER, amount: parseEther('1000') });

const both = (m: ReturnType<typeof messageFor>): ApprovalRecord[] => [approval('alice', m), approval('bob', m)];
const sign = (unsignedTx: string, approvals: readonly ApprovalRecord[]) =>
  device.link.sign({ handle: device.poolA.eth.handle, poolId: 'pool-a', unsignedTx, approvals });

/** ethers puts the device's signature on the unsigned transaction and recovers who sent it. */
function signedByEthers(unsignedTx: string, result: SignResult): Transaction {
  expect(result.scheme).toBe('ecdsa-secp256k1');
  const sig = result.signatures[0] as Uint8Array;
  const tx = Transaction.from(unsignedTx);
  tx.signature = Signature.from({ r: '0x' + bytesToHex(sig.slice(0, 32)), s: '0x' + bytesToHex(sig.slice(32)), yParity: result.recoveries[0] as 0 | 1 });
  return tx;
}

describe('the positive control', () => {
  it('when the honest set approves "0.5 ETH to X", then the device signs and ethers recovers the pool address from exactly that transaction', async () => {
    const result = expectSigned(await sign(honest.unsignedTx, both(messageFor(honest))));
    const signed = signedByEthers(honest.unsignedTx, result);
    expect({ from: signed.from, to: signed.to, value: signed.value, nonce: signed.nonce, chainId: signed.chainId }).toEqual({
      from: computeAddress('0x' + device.hex(device.poolA.eth)),
      to: ETH_DESTINATION,
      value: parseEther('0.5'),
      nonce: 0,
      chainId: 11155111n,
    });
  });
});

describe('swapping the transaction', () => {
  it('when honest approvals of "0.5 ETH to X" come with a SIGN of "1000 ETH to the attacker", then TRANSACTION_MISMATCH and no signature', async () => {
    expectRefused(await sign(theft.unsignedTx, both(messageFor(honest))), Status.TRANSACTION_MISMATCH, /approval 1: approves another transaction than the one to sign/);
  });

  it('when the messages carry the attacker\'s transaction but read "0.5 ETH to X" with the honest digest, then TRANSACTION_MISMATCH: the fields disagree with the transaction', async () => {
    const lying = messageFor(theft, { amount: honest.amount.toString(), to: honest.to, digest: bytesToHex(honest.digest) });
    expectRefused(await sign(theft.unsignedTx, both(lying)), Status.TRANSACTION_MISMATCH, /the message does not describe its transaction: "amount" says 500000000000000000 but the transaction has 1000000000000000000000/);
  });

  it('when only one field lies (the destination, the digest, the fee cap or the asset), then each is TRANSACTION_MISMATCH naming that field', async () => {
    const lies: [string, Partial<ReturnType<typeof messageFor>>][] = [
      ['to', { to: ETH_DESTINATION }],
      ['digest', { digest: bytesToHex(honest.digest) }],
      ['maxFee', { maxFee: '1' }],
      ['asset', { asset: `erc20:${TOKEN}` }],
    ];
    for (const [field, over] of lies) {
      expectRefused(await sign(theft.unsignedTx, both(messageFor(theft, over))), Status.TRANSACTION_MISMATCH, new RegExp(`"${field}" says`));
    }
  });

  it('when an ERC-20 transfer to the attacker is signed with messages reading "100 tokens to X", then TRANSACTION_MISMATCH', async () => {
    const build = (recipient: string, amount: bigint): TestTransaction => {
      const p = buildEthereumTransfer({ chainId: 11155111n, nonce: 2n, gasLimit: 65_000n, fees: ETH_FEES, intent: { asset: `erc20:${TOKEN}`, recipient, amount } });
      return { chain: SEPOLIA, unsignedTx: p.unsignedTx, asset: p.transfer.intent.asset, amount, to: p.transfer.intent.recipient, maxFee: p.maxFee, digest: p.digest };
    };
    const shown = build(ETH_DESTINATION, 100n);
    const stolen = build(ATTACKER, 10n ** 24n);
    expect(stolen.asset).toBe(`erc20:${TOKEN}`);
    expectRefused(await sign(stolen.unsignedTx, both(messageFor(shown))), Status.TRANSACTION_MISMATCH, /approves another transaction/);
    expectRefused(await sign(stolen.unsignedTx, both(messageFor(stolen, { to: ETH_DESTINATION, amount: '100' }))), Status.TRANSACTION_MISMATCH, /"amount" says 100 but/);
  });

  it('when the transaction is for another chain id than the key\'s chain, then the device cannot decode it for this key (BAD_REQUEST), and a message naming mainnet is QUORUM_REFUSED', async () => {
    const mainnet = Transaction.from({ type: 2, chainId: 1n, nonce: 0, to: ETH_DESTINATION, value: parseEther('0.5'), gasLimit: 21_000n, maxFeePerGas: ETH_FEES.maxFeePerGas, maxPriorityFeePerGas: ETH_FEES.maxPriorityFeePerGas }).unsignedSerialized;
    expectRefused(await sign(mainnet, both(messageFor({ ...honest, unsignedTx: mainnet }))), Status.BAD_REQUEST, /chain id 1, not 11155111/);
    expectRefused(await sign(honest.unsignedTx, both(messageFor(honest, { chain: 'eip155:1' }))), Status.QUORUM_REFUSED, /names chain eip155:1, not eip155:11155111/);
  });
});

describe('reusing one approval set', () => {
  it('when the set that approved "0.5 ETH to X" at nonce 0 is sent again for a second transaction (nonce 1) and a third (another destination), then both are TRANSACTION_MISMATCH', async () => {
    const approvals = both(messageFor(honest));
    const second = ethereumTx({ nonce: 1n, to: ETH_DESTINATION, amount: parseEther('0.5') });
    const third = ethereumTx({ nonce: 0n, to: ATTACKER, amount: parseEther('0.5') });
    expectRefused(await sign(second.unsignedTx, approvals), Status.TRANSACTION_MISMATCH, /approves another transaction/);
    expectRefused(await sign(third.unsignedTx, approvals), Status.TRANSACTION_MISMATCH, /approves another transaction/);
    // The set is still good for the one transaction it names (and gives the same signature: RFC 6979).
    const first = expectSigned(await sign(honest.unsignedTx, approvals));
    const again = expectSigned(await sign(honest.unsignedTx, approvals));
    expect(bytesToHex(again.signatures[0] as Uint8Array)).toBe(bytesToHex(first.signatures[0] as Uint8Array));
  });

  it('when alice\'s approval of one transaction and bob\'s of another are combined for either, then TRANSACTION_MISMATCH', async () => {
    const other = ethereumTx({ nonce: 1n, to: ETH_DESTINATION, amount: parseEther('0.5') });
    const mixed = [approval('alice', messageFor(honest)), approval('bob', messageFor(other))];
    expectRefused(await sign(honest.unsignedTx, mixed), Status.TRANSACTION_MISMATCH, /approval 2: approves another transaction/);
    expectRefused(await sign(other.unsignedTx, mixed), Status.TRANSACTION_MISMATCH, /approval 1: approves another transaction/);
  });
});

/** An EIP-1559 Sepolia transaction serialized unsigned by ethers. */
function ethersTx(over: { to: string; data: string }): string {
  return Transaction.from({
    type: 2,
    chainId: 11155111n,
    nonce: 5,
    to: over.to,
    value: 0n,
    data: over.data,
    gasLimit: 65_000n,
    maxFeePerGas: ETH_FEES.maxFeePerGas,
    maxPriorityFeePerGas: ETH_FEES.maxPriorityFeePerGas,
  }).unsignedSerialized;
}

describe('a contract call the message misstates', () => {
  const erc20 = new Interface(['function approve(address spender, uint256 value)']);
  /** What the attacker sends: approve the attacker to spend every token of the pool. */
  const drain = ethersTx({ to: TOKEN, data: erc20.encodeFunctionData('approve', [ATTACKER, MAX_UINT256]) });
  /** What the approvers are told: approve the exchange's DEX to spend 1000. */
  const shown = ethersTx({ to: TOKEN, data: erc20.encodeFunctionData('approve', [DEX, 1000n]) });
  /** What an approver's client reads from a transaction alone (the same decoder the device runs). */
  const read = (unsignedTx: string): TestTransaction => {
    const d = decodeTransaction(SEPOLIA, unsignedTx, null);
    return { chain: SEPOLIA, unsignedTx, asset: d.asset, amount: d.amount, to: d.to, maxFee: d.maxFee, digest: d.digest, ...(d.call === null ? {} : { call: d.call }) };
  };
  const drainRead = read(drain);
  const actual = drainRead.call as DecodedCall;
  const shownCall = read(shown).call as DecodedCall;

  it('when the call is stated as decoded, then the device signs, ethers reads the same arguments and recovers the pool address (the positive control)', async () => {
    const fromEthers = erc20.decodeFunctionData('approve', Transaction.from(drain).data);
    expect(actual).toMatchObject({ contract: TOKEN, selector: '0x095ea7b3' });
    expect(actual.args?.map((a) => a.value)).toEqual([fromEthers[0], (fromEthers[1] as bigint).toString()]);
    const result = expectSigned(await sign(drain, both(messageFor(drainRead))));
    const signed = signedByEthers(drain, result);
    expect({ from: signed.from, to: signed.to, data: signed.data }).toEqual({ from: computeAddress('0x' + device.hex(device.poolA.eth)), to: TOKEN, data: erc20.encodeFunctionData('approve', [ATTACKER, MAX_UINT256]) });
  });

  it('when the message\'s call names another selector, another contract, or no call at all, then TRANSACTION_MISMATCH', async () => {
    expectRefused(await sign(drain, both(messageFor(drainRead, { call: { ...actual, selector: '0x39509351' } }))), Status.TRANSACTION_MISMATCH, /"call" says/);
    expectRefused(await sign(drain, both(messageFor(drainRead, { call: { ...actual, contract: DEX } }))), Status.TRANSACTION_MISMATCH, /"call" says/);
    const plain = Object.fromEntries(Object.entries(messageFor(drainRead)).filter(([field]) => field !== 'call')) as ReturnType<typeof messageFor>;
    expectRefused(await sign(drain, both(plain)), Status.TRANSACTION_MISMATCH, /"call" says none but the transaction has/);
  });

  it('when the message states approve(DEX, 1000) over a transaction that calls approve(attacker, max), then TRANSACTION_MISMATCH, whether only the arguments lie or every field does', async () => {
    // The arguments are decoded (the device reads them itself); the lie is only in their values.
    expect(actual.args).toBeDefined();
    const stated: DecodedCall = { ...actual, args: shownCall.args as readonly DecodedArgument[] };
    expect(canonicalize(stated)).not.toBe(canonicalize(actual));
    expectRefused(await sign(drain, both(messageFor(drainRead, { call: stated }))), Status.TRANSACTION_MISMATCH, /"call" says/);
    const consistent = messageFor(drainRead, { call: stated, to: DEX, amount: '1000' });
    expectRefused(await sign(drain, both(consistent)), Status.TRANSACTION_MISMATCH, /"amount" says 1000 but/);
  });

  it('when the message lists the transaction\'s own arguments swapped (value first, spender second), then TRANSACTION_MISMATCH', async () => {
    expect(actual.args?.length).toBe(2);
    const stated: DecodedCall = { ...actual, args: [...(actual.args as readonly DecodedArgument[])].reverse() };
    expectRefused(await sign(drain, both(messageFor(drainRead, { call: stated }))), Status.TRANSACTION_MISMATCH, /"call" says/);
  });
});
