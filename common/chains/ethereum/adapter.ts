/**
 * The Ethereum family's decoder (EIP-1559 and legacy EIP-155 transactions) for the gateway, the
 * approver's client and the simulator: common/chains/decoded-transaction.ts.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { evmChainId } from '../../chain-id.js';
import type { ChainAdapter, DecodedCall, DecodedTransaction } from '../decoded-transaction.js';
import { decodeEthereumUnsignedTx, type PreparedEthereumTx } from './transaction.js';

function callOf(p: PreparedEthereumTx): DecodedCall | null {
  const intent = p.transfer.intent;
  return intent.data === undefined ? null : { contract: intent.recipient, selector: '0x' + intent.data.slice(0, 8) };
}

export function decodedEthereum(p: PreparedEthereumTx): DecodedTransaction {
  const t = p.transfer;
  const call = callOf(p);
  const fees: [string, string][] =
    t.fees.kind === 'eip1559'
      ? [['max fee per gas', `${t.fees.maxFeePerGas} wei`], ['max priority fee per gas', `${t.fees.maxPriorityFeePerGas} wei`]]
      : [['gas price', `${t.fees.gasPrice} wei`]];
  const erc20 = t.intent.asset !== 'ETH';
  return {
    asset: t.intent.asset,
    amount: t.intent.amount,
    to: t.intent.recipient,
    maxFee: p.maxFee,
    digest: p.digest,
    payload: p.digest,
    scheme: 'ecdsa-secp256k1',
    call,
    signOnceKey: p.signOnceKey,
    claims: [],
    details: [
      ['type', t.fees.kind === 'eip1559' ? 'EIP-1559 (type 2)' : 'legacy (EIP-155)'],
      ['chain id', t.chainId.toString()],
      ['nonce', t.nonce.toString()],
      ['to', erc20 ? t.intent.asset.slice('erc20:'.length) : t.intent.recipient],
      ['value', `${erc20 ? 0n : t.intent.amount} wei`],
      ...(erc20 ? ([['data', `ERC-20 transfer(address to = ${t.intent.recipient}, uint256 value = ${t.intent.amount})`]] as [string, string][]) : []),
      ...(call ? ([['data', `call ${call.selector} of ${call.contract}: 0x${t.intent.data ?? ''}`]] as [string, string][]) : []),
      ['gas limit', t.gasLimit.toString()],
      ...fees,
      ['max fee', `${p.maxFee} wei`],
      ['signing hash', bytesToHex(p.digest)],
    ],
  };
}

export const ethereumAdapter: ChainAdapter = {
  decode: (chain, unsignedTx) => decodedEthereum(decodeEthereumUnsignedTx(unsignedTx, evmChainId(chain))),
};
