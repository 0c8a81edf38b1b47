/**
 * Chains named by CAIP-2 ids (SPEC section 4): `eip155:<chainId>`, `bip122:<genesis hash prefix>`,
 * `solana:<genesis hash prefix>`.
 */
import { ValidationError } from './errors.js';

export type ChainFamily = 'eip155' | 'bip122' | 'solana';

/** A validated CAIP-2 chain id string. */
export type ChainId = string & { readonly __chainId: unique symbol };

export interface ParsedChainId {
  readonly id: ChainId;
  readonly family: ChainFamily;
  readonly reference: string;
}

/** Genesis-hash prefixes (CAIP-4) of the Bitcoin networks we know. */
export const BITCOIN_NETWORKS = {
  '000000000019d6689c085ae165831e93': 'mainnet',
  '000000000933ea01ad0ee984209779ba': 'testnet',
  '0f9188f13cb7b2c71f2a335e3a4fc328': 'regtest',
} as const;
export type BitcoinNetwork = (typeof BITCOIN_NETWORKS)[keyof typeof BITCOIN_NETWORKS];

const CAIP2 = /^(eip155|bip122|solana):([-_a-zA-Z0-9]{1,32})$/;

export function parseChainId(value: unknown, field = 'chain'): ParsedChainId {
  if (typeof value !== 'string') throw new ValidationError('invalid_chain', `"${field}" expected a CAIP-2 chain id, got ${typeof value}`);
  const m = CAIP2.exec(value);
  if (!m) {
    throw new ValidationError('invalid_chain', `"${field}" expected a CAIP-2 chain id such as "eip155:1" or "bip122:000000000019d6689c085ae165831e93", got "${value.slice(0, 80)}"`);
  }
  const family = m[1] as ChainFamily;
  const reference = m[2] as string;
  if (family === 'eip155' && !/^[1-9][0-9]{0,15}$/.test(reference)) {
    throw new ValidationError('invalid_chain', `"${field}": eip155 chain reference must be a positive decimal chain id, got "${reference}"`);
  }
  if (family === 'bip122' && !(reference in BITCOIN_NETWORKS)) {
    throw new ValidationError('invalid_chain', `"${field}": unknown Bitcoin network "${reference}" (known: ${Object.keys(BITCOIN_NETWORKS).join(', ')})`);
  }
  return { id: value as ChainId, family, reference };
}

export function assertChainId(value: unknown, field = 'chain'): ChainId {
  return parseChainId(value, field).id;
}

/** The numeric chain id of an eip155 chain. */
export function evmChainId(chain: ParsedChainId): bigint {
  if (chain.family !== 'eip155') throw new ValidationError('invalid_chain', `chain "${chain.id}" is not an EVM chain`);
  return BigInt(chain.reference);
}

export function bitcoinNetwork(chain: ParsedChainId): BitcoinNetwork {
  if (chain.family !== 'bip122') throw new ValidationError('invalid_chain', `chain "${chain.id}" is not a Bitcoin chain`);
  return BITCOIN_NETWORKS[chain.reference as keyof typeof BITCOIN_NETWORKS];
}

/** The curve a pool key on this chain family uses. */
export function curveForChain(family: ChainFamily): 'secp256k1' | 'ed25519' {
  return family === 'solana' ? 'ed25519' : 'secp256k1';
}

/** The native asset symbol of a chain family. */
export function nativeAsset(family: ChainFamily): 'ETH' | 'BTC' | 'SOL' {
  return family === 'eip155' ? 'ETH' : family === 'bip122' ? 'BTC' : 'SOL';
}
