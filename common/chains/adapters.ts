/**
 * The chain families the product signs for, one adapter each: adding a family is one folder under
 * common/chains/ and one line here.
 */
import { parseChainId, type ChainFamily } from '../chain-id.js';
import { bitcoinAdapter } from './bitcoin/adapter.js';
import type { ChainAdapter, DecodeOptions, DecodedTransaction } from './decoded-transaction.js';
import { ethereumAdapter } from './ethereum/adapter.js';
import { solanaAdapter } from './solana/adapter.js';

export const CHAIN_ADAPTERS: Readonly<Record<ChainFamily, ChainAdapter>> = {
  eip155: ethereumAdapter,
  bip122: bitcoinAdapter,
  solana: solanaAdapter,
};

/**
 * Decodes an unsigned transaction of `chain` in the API's encoding, fully or not at all (ValidationError
 * naming what could not be read). With `signer`, the transaction must spend from that pool key;
 * `options.functions` are contract functions the reader knows besides the ERC-20 ones.
 */
export function decodeTransaction(chain: string, unsignedTx: string, signer: Uint8Array | null, options?: DecodeOptions): DecodedTransaction {
  const parsed = parseChainId(chain, 'chain');
  return CHAIN_ADAPTERS[parsed.family].decode(parsed, unsignedTx, signer, options);
}
