/**
 * The Ethereum family's decoder (EIP-1559 and legacy EIP-155 transactions) for the gateway, the
 * approver's client and the simulator: common/chains/decoded-transaction.ts.
 *
 * A contract call is decoded by ABI (contract-call.ts). A known ERC-20 call that moves tokens is
 * described by what it moves, like a token transfer: `approve` and `increaseAllowance` as `amount` of
 * `erc20:<token>` that the spender (`to`) may take, `transferFrom` as `amount` of it to its recipient;
 * it sends no ETH. Its `call` stays in the decoding, so the approval message names the function and
 * every argument.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { evmChainId } from '../../chain-id.js';
import { MAX_UINT256 } from '../../amount.js';
import { ValidationError } from '../../errors.js';
import type { ChainAdapter, DecodedCall, DecodedTransaction } from '../decoded-transaction.js';
import { ERC20_FUNCTIONS, decodeContractCall, erc20Effect, knownFunction } from './contract-call.js';
import { decodeEthereumUnsignedTx, type PreparedEthereumTx } from './transaction.js';

type Line = [string, string];

function callLines(call: DecodedCall, asset: string): Line[] {
  if (call.function === undefined || call.args === undefined) return [];
  const known = knownFunction(call.selector) !== undefined;
  const shown = `${call.function.slice(0, call.function.indexOf('('))}(${call.args.map((a) => `${a.type} ${a.name} = ${a.value}`).join(', ')})`;
  const lines: Line[] = [
    ['data', known ? `ERC-20 ${shown}` : `call ${shown} of ${call.contract}`],
    ['function', `${call.function} (selector ${call.selector})`],
    ...call.args.map((a): Line => [`argument ${a.name}`, `${a.value} (${a.type})`]),
  ];
  const effect = erc20Effect(call);
  if (effect?.kind === 'allowance') {
    const unlimited = effect.amount === MAX_UINT256 ? ' (2^256-1: unlimited)' : '';
    const how = call.selector === ERC20_FUNCTIONS.approve.selector ? 'may spend' : 'may spend, besides its current allowance,';
    lines.push(['allowance', `${effect.recipient} ${how} ${effect.amount}${unlimited} base units of ${asset}`]);
  } else if (effect?.kind === 'transfer') {
    lines.push(['moves', `${effect.amount} base units of ${asset} from ${call.args.find((a) => a.name === 'from')?.value} to ${effect.recipient}`]);
  }
  return lines;
}

/** Decodes a prepared transaction; `functions` are contract functions known besides the ERC-20 ones. */
export function decodedEthereum(p: PreparedEthereumTx, functions: readonly string[] = []): DecodedTransaction {
  const t = p.transfer;
  const intent = t.intent;
  const call = intent.data === undefined ? null : decodeContractCall(intent.recipient, intent.data, functions);
  const effect = call === null ? null : erc20Effect(call);
  if (effect !== null && intent.amount !== 0n) {
    throw new ValidationError('unsupported_call', `"unsignedTx" sends ETH together with an ERC-20 ${call?.function}`);
  }
  const asset = effect !== null ? `erc20:${intent.recipient}` : intent.asset;
  const fees: Line[] =
    t.fees.kind === 'eip1559'
      ? [['max fee per gas', `${t.fees.maxFeePerGas} wei`], ['max priority fee per gas', `${t.fees.maxPriorityFeePerGas} wei`]]
      : [['gas price', `${t.fees.gasPrice} wei`]];
  const tokenTransfer = call === null && intent.asset !== 'ETH';
  const data: Line[] = tokenTransfer
    ? [['data', `ERC-20 transfer(address to = ${intent.recipient}, uint256 value = ${intent.amount})`]]
    : call === null
      ? []
      : call.function === undefined
        ? [['data', `call ${call.selector} of ${call.contract}: 0x${intent.data ?? ''}`]]
        : callLines(call, asset);
  return {
    asset,
    amount: effect !== null ? effect.amount : intent.amount,
    to: effect !== null ? effect.recipient : intent.recipient,
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
      ['to', tokenTransfer ? intent.asset.slice('erc20:'.length) : intent.recipient],
      ['value', `${tokenTransfer ? 0n : intent.amount} wei`],
      ...data,
      ['gas limit', t.gasLimit.toString()],
      ...fees,
      ['max fee', `${p.maxFee} wei`],
      ['signing hash', bytesToHex(p.digest)],
    ],
  };
}

export const ethereumAdapter: ChainAdapter = {
  decode: (chain, unsignedTx, _signer, options) => decodedEthereum(decodeEthereumUnsignedTx(unsignedTx, evmChainId(chain)), options?.functions),
};
