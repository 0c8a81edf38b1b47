/**
 * The Solana family's decoder (one System Program transfer, the pool as only signer and fee payer)
 * for the gateway, the approver's client and the simulator: common/chains/decoded-transaction.ts.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { base58 } from '@scure/base';
import type { ChainAdapter, DecodedTransaction } from '../decoded-transaction.js';
import { decodeSolanaUnsignedTx, type PreparedSolanaTx } from './transaction.js';

const SYSTEM_PROGRAM = '11111111111111111111111111111111';

export function decodedSolana(p: PreparedSolanaTx): DecodedTransaction {
  const t = p.transfer;
  return {
    asset: 'SOL',
    amount: t.lamports,
    to: t.to,
    maxFee: p.fee,
    digest: p.digest,
    payload: p.message,
    scheme: 'ed25519',
    call: null,
    // The same message twice is one request; a blockhash bounds its life, so there is no nonce to guard.
    signOnceKey: `tx:${bytesToHex(p.digest)}`,
    claims: [],
    details: [
      ['message', 'legacy'],
      ['fee payer', `${t.from} (the only signer)`],
      ['account 0', `${t.from} (signer, writable)`],
      ['account 1', `${t.to} (writable)`],
      ['account 2', `${SYSTEM_PROGRAM} (System Program)`],
      ['instruction 0', `System Program transfer of ${t.lamports} lamports from ${t.from} to ${t.to}`],
      ['recent blockhash', t.recentBlockhash],
      ['fee', `${p.fee} lamports`],
      ['digest', bytesToHex(p.digest)],
    ],
  };
}

export const solanaAdapter: ChainAdapter = {
  decode: (_chain, unsignedTx, signer) => decodedSolana(decodeSolanaUnsignedTx(unsignedTx, signer === null ? null : base58.encode(signer))),
};
