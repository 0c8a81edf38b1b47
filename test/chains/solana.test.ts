/**
 * Solana SOL transfers checked with code we did not write: @solana/web3.js (v1, a separate codebase
 * from the @solana/kit the gateway encodes with) parses our unsigned and signed transactions, reads the
 * System Program transfer, and verifies the pool's signature; transactions it builds are accepted.
 */
import { describe, expect, it } from 'vitest';
import * as web3 from '@solana/web3.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base58, base64 } from '@scure/base';
import { assembleSolanaSigned, buildSolanaTransfer, decodeSolanaUnsignedTx, LAMPORTS_PER_SIGNATURE } from '../../common/chains/solana/transaction.js';
import { solanaAddressFromPublicKey } from '../../common/chains/solana/address.js';

const SECRET = hexToBytes('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const PUB = ed25519.getPublicKey(SECRET);
const POOL = solanaAddressFromPublicKey(PUB);
const DEST = 'FDwkzWGxx6LfCfzcmVVLEk3QUMxNhuFuKEMRwzR4Dtys';
const BLOCKHASH = 'J2BjKU6L83eehHVgoze6uTXGCBu6nbxsqEro9QvWpU52';

function web3Transfer(over: { from?: string; to?: string; lamports?: bigint; extra?: web3.TransactionInstruction; feePayer?: string } = {}): string {
  const tx = new web3.Transaction({ feePayer: new web3.PublicKey(over.feePayer ?? POOL), recentBlockhash: BLOCKHASH });
  tx.add(web3.SystemProgram.transfer({ fromPubkey: new web3.PublicKey(over.from ?? POOL), toPubkey: new web3.PublicKey(over.to ?? DEST), lamports: over.lamports ?? 1_500_000_000n }));
  if (over.extra) tx.add(over.extra);
  return tx.serialize({ requireAllSignatures: false, verifySignatures: false }).toString('base64');
}

describe('building and signing a SOL transfer', () => {
  it('when a transfer is built, signed by the pool key and assembled, then web3.js reads the transfer and the signature verifies', () => {
    const p = buildSolanaTransfer({ from: POOL, to: DEST, lamports: 1_500_000_000n, recentBlockhash: BLOCKHASH });
    expect(p.fee).toBe(LAMPORTS_PER_SIGNATURE);
    expect(p.digest).toEqual(sha256(p.message));

    const unsigned = web3.Transaction.from(Buffer.from(p.unsignedTx, 'base64'));
    expect(unsigned.feePayer?.toBase58()).toBe(POOL);
    expect(unsigned.recentBlockhash).toBe(BLOCKHASH);
    expect(unsigned.instructions.length).toBe(1);
    const ix = unsigned.instructions[0] as web3.TransactionInstruction;
    expect(web3.SystemInstruction.decodeInstructionType(ix)).toBe('Transfer');
    const transfer = web3.SystemInstruction.decodeTransfer(ix);
    expect({ from: transfer.fromPubkey.toBase58(), to: transfer.toPubkey.toBase58(), lamports: transfer.lamports }).toEqual({ from: POOL, to: DEST, lamports: 1_500_000_000n });
    expect(new Uint8Array(unsigned.serializeMessage())).toEqual(p.message);

    const signature = ed25519.sign(p.message, SECRET);
    const { signedTx, txHash } = assembleSolanaSigned(p, signature, PUB);
    const signed = web3.Transaction.from(Buffer.from(signedTx, 'base64'));
    expect(signed.verifySignatures()).toBe(true);
    expect(base58.encode(signed.signature as Uint8Array)).toBe(txHash);
  });

  it('when web3.js builds the same transfer unsigned, then the gateway accepts it and reads the same fields', () => {
    const p = decodeSolanaUnsignedTx(web3Transfer(), POOL);
    expect(p.transfer).toEqual({ from: POOL, to: DEST, lamports: 1_500_000_000n, recentBlockhash: BLOCKHASH });
    expect(p.unsignedTx).toBe(buildSolanaTransfer(p.transfer).unsignedTx);
  });

  it('when the signature is by another key, then assembly refuses it', () => {
    const p = buildSolanaTransfer({ from: POOL, to: DEST, lamports: 1n, recentBlockhash: BLOCKHASH });
    const other = ed25519.sign(p.message, hexToBytes('11'.repeat(32)));
    expect(() => assembleSolanaSigned(p, other, PUB)).toThrow(expect.objectContaining({ code: 'signature_mismatch' }));
  });

  it('when the fields are wrong, then the build is refused with a clear reason', () => {
    expect(() => buildSolanaTransfer({ from: POOL, to: POOL, lamports: 1n, recentBlockhash: BLOCKHASH })).toThrow(/own address/);
    expect(() => buildSolanaTransfer({ from: POOL, to: DEST, lamports: 0n, recentBlockhash: BLOCKHASH })).toThrow(/lamports/);
    expect(() => buildSolanaTransfer({ from: POOL, to: DEST, lamports: 1n, recentBlockhash: 'not-a-hash' })).toThrow(/recentBlockhash/);
    expect(() => buildSolanaTransfer({ from: POOL, to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', lamports: 1n, recentBlockhash: BLOCKHASH })).toThrow(/"to" is not a Solana address/);
  });
});

describe('decoding a requester\'s transaction', () => {
  const memo = new web3.TransactionInstruction({ programId: new web3.PublicKey('MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr'), keys: [], data: Buffer.from('hi') });
  const other = solanaAddressFromPublicKey(ed25519.getPublicKey(hexToBytes('22'.repeat(32))));
  const refusals: [string, () => string, RegExp][] = [
    ['a second instruction', () => web3Transfer({ extra: memo }), /2 instructions/],
    ['another fee payer', () => web3Transfer({ feePayer: other }), /signed by the pool alone|another fee payer/],
    ['lamports from another account', () => web3Transfer({ from: other }), /signed by the pool alone/],
    ['bytes that are no transaction', () => base64.encode(new Uint8Array([1, 2, 3])), /not a Solana transaction/],
    ['a size above the packet limit', () => base64.encode(new Uint8Array(2000)), /larger than 1232/],
  ];
  for (const [name, make, message] of refusals) {
    it(`when it has ${name}, then it is refused with a clear reason`, () => {
      expect(() => decodeSolanaUnsignedTx(make(), POOL)).toThrow(message);
    });
  }

  it('when it already carries a signature, then it is refused', () => {
    const p = buildSolanaTransfer({ from: POOL, to: DEST, lamports: 5n, recentBlockhash: BLOCKHASH });
    const { signedTx } = assembleSolanaSigned(p, ed25519.sign(p.message, SECRET), PUB);
    expect(() => decodeSolanaUnsignedTx(signedTx, POOL)).toThrow(/already carries a signature/);
  });
});
