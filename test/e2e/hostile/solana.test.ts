/**
 * A compromised gateway against the real simulator, Solana (SPEC rules 2-3, section 5): the device
 * decodes the wire transaction itself and signs only a legacy message with one System Program transfer
 * from the pool, the pool as fee payer and only signer. A second instruction, another fee payer and a
 * swapped message are each refused with their status and no signature (the attacks are compiled with
 * @solana/kit the way common/chains/solana/transaction.ts compiles a transfer); the honest set signs,
 * and @solana/web3.js (code we did not write) verifies the signature over the message it serializes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as web3 from '@solana/web3.js';
import {
  address as asAddress,
  appendTransactionMessageInstruction,
  blockhash as asBlockhash,
  compileTransaction,
  createNoopSigner,
  createTransactionMessage,
  getBase64EncodedWireTransaction,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
} from '@solana/kit';
import { getTransferSolInstruction } from '@solana-program/system';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { base58 } from '@scure/base';
import { Status, type ApprovalRecord } from '../../../common/sim-protocol.js';
import { SOLANA_MAINNET, SOL_BLOCKHASH, SOL_DESTINATION, approval, messageFor, solanaTx, type TestTransaction } from '../../hsm-sim/fixtures.js';
import { expectRefused, expectSigned, startDeviceUnderAttack, type DeviceUnderAttack } from './device-under-attack.js';

let device: DeviceUnderAttack;
beforeAll(async () => {
  device = await startDeviceUnderAttack();
});
afterAll(async () => {
  await device?.stop();
});

const ATTACKER = base58.encode(ed25519.getPublicKey(ed25519.utils.randomSecretKey()));
const both = (m: ReturnType<typeof messageFor>): ApprovalRecord[] => [approval('alice', m), approval('bob', m)];
const sign = (unsignedTx: string, approvals: readonly ApprovalRecord[]) => device.link.sign({ handle: device.poolA.sol.handle, poolId: 'pool-a', unsignedTx, approvals });
const poolAddress = () => base58.encode(device.poolA.sol.publicKey);

/** A legacy transaction compiled by @solana/kit: `transfers` in order, paid for by `feePayer`. */
function compiled(feePayer: string, transfers: { from: string; to: string; lamports: bigint }[]): TestTransaction {
  const tx = compileTransaction(
    transfers.reduce(
      (m, t) => appendTransactionMessageInstruction(getTransferSolInstruction({ source: createNoopSigner(asAddress(t.from)), destination: asAddress(t.to), amount: t.lamports }), m),
      pipe(
        createTransactionMessage({ version: 'legacy' }),
        (m) => setTransactionMessageFeePayer(asAddress(feePayer), m),
        (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: asBlockhash(SOL_BLOCKHASH), lastValidBlockHeight: 0n }, m),
      ) as Parameters<typeof appendTransactionMessageInstruction>[1],
    ) as Parameters<typeof compileTransaction>[0],
  );
  const first = transfers[0] as { to: string; lamports: bigint };
  // The message reads like the first transfer, with the honest digest of these very bytes.
  return { chain: SOLANA_MAINNET, unsignedTx: getBase64EncodedWireTransaction(tx), asset: 'SOL', amount: first.lamports, to: first.to, maxFee: 5000n, digest: sha256(new Uint8Array(tx.messageBytes)) };
}

describe('the positive control', () => {
  it('when the honest set approves a transfer, then the device signs and web3.js verifies the signature over the message and reads the same transfer', async () => {
    const tx = solanaTx(device.hex(device.poolA.sol));
    const result = expectSigned(await sign(tx.unsignedTx, both(messageFor(tx))));
    expect(result.scheme).toBe('ed25519');
    const signed = web3.Transaction.from(Buffer.from(tx.unsignedTx, 'base64'));
    signed.addSignature(new web3.PublicKey(device.poolA.sol.publicKey), Buffer.from(result.signatures[0] as Uint8Array));
    expect(signed.verifySignatures()).toBe(true);
    const transfer = web3.SystemInstruction.decodeTransfer(signed.instructions[0] as web3.TransactionInstruction);
    expect({ from: transfer.fromPubkey.toBase58(), to: transfer.toPubkey.toBase58(), lamports: transfer.lamports, instructions: signed.instructions.length }).toEqual({
      from: poolAddress(),
      to: SOL_DESTINATION,
      lamports: 1_500_000_000n,
      instructions: 1,
    });
  });

  it('when the same transfer is compiled here with @solana/kit, then it is the fixture\'s bytes and signs (the attacks below differ from it only in what they add)', async () => {
    const tx = compiled(poolAddress(), [{ from: poolAddress(), to: SOL_DESTINATION, lamports: 1_500_000_000n }]);
    expect(tx.unsignedTx).toBe(solanaTx(device.hex(device.poolA.sol)).unsignedTx);
    expectSigned(await sign(tx.unsignedTx, both(messageFor(tx))));
  });
});

describe('transactions the device does not sign', () => {
  it('when the message carries a second instruction (another transfer from the pool to the attacker), then BAD_REQUEST', async () => {
    const tx = compiled(poolAddress(), [
      { from: poolAddress(), to: SOL_DESTINATION, lamports: 1_500_000_000n },
      { from: poolAddress(), to: ATTACKER, lamports: 900_000_000_000n },
    ]);
    expectRefused(await sign(tx.unsignedTx, both(messageFor(tx))), Status.BAD_REQUEST, /has 2 instructions/);
  });

  it('when the fee payer is not the pool (the attacker pays, the pool\'s lamports move), then BAD_REQUEST: the pool must be the only signer', async () => {
    const tx = compiled(ATTACKER, [{ from: poolAddress(), to: SOL_DESTINATION, lamports: 1_500_000_000n }]);
    expectRefused(await sign(tx.unsignedTx, both(messageFor(tx))), Status.BAD_REQUEST, /must be signed by the pool alone/);
  });

  it('when the transfer moves lamports from another account, paid and signed by that account, then BAD_REQUEST', async () => {
    const tx = compiled(ATTACKER, [{ from: ATTACKER, to: SOL_DESTINATION, lamports: 1n }]);
    expectRefused(await sign(tx.unsignedTx, both(messageFor(tx))), Status.BAD_REQUEST, /must be signed by the pool alone/);
  });
});

describe('swapping the transaction', () => {
  it('when honest approvals of a transfer to X come with a SIGN of a transfer to the attacker, then TRANSACTION_MISMATCH; with the fields left honest over the attacker\'s bytes, too', async () => {
    const shown = solanaTx(device.hex(device.poolA.sol));
    const stolen = solanaTx(device.hex(device.poolA.sol), { to: ATTACKER, lamports: 900_000_000_000n });
    expectRefused(await sign(stolen.unsignedTx, both(messageFor(shown))), Status.TRANSACTION_MISMATCH, /approves another transaction/);
    const lying = messageFor(stolen, { to: shown.to, amount: shown.amount.toString(), digest: bytesToHex(shown.digest) });
    expectRefused(await sign(stolen.unsignedTx, both(lying)), Status.TRANSACTION_MISMATCH, /"amount" says 1500000000 but the transaction has 900000000000/);
    expectRefused(await sign(stolen.unsignedTx, both(messageFor(stolen, { to: shown.to }))), Status.TRANSACTION_MISMATCH, /"to" says/);
  });

  it('when one approval set is reused for the same transfer with another recent blockhash, then TRANSACTION_MISMATCH', async () => {
    const approvals = both(messageFor(solanaTx(device.hex(device.poolA.sol))));
    const later = solanaTx(device.hex(device.poolA.sol), { recentBlockhash: base58.encode(new Uint8Array(32).fill(7)) });
    expectRefused(await sign(later.unsignedTx, approvals), Status.TRANSACTION_MISMATCH, /approves another transaction/);
  });
});
