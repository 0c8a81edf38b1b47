/**
 * Ethereum payloads, checked with code we did not write (ethers) and published vectors (EIP-55).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Interface, Transaction as EthersTx, getAddress, keccak256 } from 'ethers';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { assertEthAddress, ethAddressFromPublicKey } from '../../common/chains/ethereum/address.js';
import { assembleEthereumSigned, buildEthereumTransfer, decodeEthereumUnsignedTx, type EthereumTransfer } from '../../common/chains/ethereum/transaction.js';
import { CustodyError, ValidationError } from '../../common/errors.js';

const vectors = (name: string) => JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', name), 'utf8'));
const eip55 = vectors('eip55-addresses.json') as { valid: string[]; checksummed: Record<string, string> };
const keys = vectors('secp256k1-eth-addresses.json') as { vectors: { privateKey: string; address: string }[] };

const SECRET = hexToBytes('46'.repeat(32));
const FROM = ethAddressFromPublicKey(secp256k1.getPublicKey(SECRET, true));
const SIGNER = { address: FROM, publicKey: bytesToHex(secp256k1.getPublicKey(SECRET, true)) };
const HOT = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
const TOKEN = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const transfer: EthereumTransfer = {
  chainId: 11155111n,
  nonce: 7n,
  gasLimit: 21000n,
  fees: { kind: 'eip1559', maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n },
  intent: { asset: 'ETH', recipient: HOT, amount: 10n ** 18n },
};
const eip155 = vectors('eip155-example.json') as { privateKey: string; signingData: string; signingHash: string; v: number; signedTx: string };

function deviceSign(digest: Uint8Array, secret = SECRET): { signature: Uint8Array; recovery: 0 | 1 } {
  const sig = secp256k1.sign(digest, secret, { prehash: false, format: 'recovered' });
  return { signature: sig.slice(1), recovery: sig[0] as 0 | 1 };
}

describe('EIP-55 addresses', () => {
  for (const address of eip55.valid) {
    it(`when ${address} is checked, then it is accepted and returned checksummed`, () => {
      expect(assertEthAddress(address, 'to')).toBe(getAddress(address));
    });
  }
  for (const [lower, mixed] of Object.entries(eip55.checksummed)) {
    it(`when ${lower} is given in lowercase, then its EIP-55 form is ${mixed}`, () => {
      expect(assertEthAddress(lower, 'to')).toBe(mixed);
    });
  }

  it('when a mixed-case address has a wrong checksum, then it is refused naming the field', () => {
    expect(() => assertEthAddress('0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD', 'to')).toThrowErrorMatchingInlineSnapshot(
      `[ValidationError: "to" has a wrong EIP-55 checksum (did you mean a different address? 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD)]`,
    );
  });

  it('when the value is not an address, then it is refused', () => {
    for (const bad of ['', '0x', '5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe', '0xZZAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', 42, null]) {
      expect(() => assertEthAddress(bad, 'to')).toThrow(ValidationError);
    }
  });

  for (const v of keys.vectors) {
    it(`when the public key of private key ${v.privateKey.slice(-1)} is converted, then the address is ${v.address}`, () => {
      const secret = hexToBytes(v.privateKey);
      expect(ethAddressFromPublicKey(secp256k1.getPublicKey(secret, true))).toBe(v.address);
      expect(ethAddressFromPublicKey(secp256k1.getPublicKey(secret, false))).toBe(v.address);
    });
  }
});

describe('EIP-1559 transfers', () => {
  it('when a transfer is built and signed, then ethers parses it with our fields, sender and hash', () => {
    const prepared = buildEthereumTransfer(transfer);
    expect(bytesToHex(prepared.digest)).toBe(keccak256(prepared.unsignedTx).slice(2));
    expect(prepared.maxFee).toBe(21000n * 30_000_000_000n);
    expect(prepared.signOnceKey).toBe('nonce:7');
    const unsigned = EthersTx.from(prepared.unsignedTx);
    expect(unsigned.unsignedHash).toBe('0x' + bytesToHex(prepared.digest));

    const { signedTx, txHash } = assembleEthereumSigned(prepared, deviceSign(prepared.digest), SIGNER);
    const tx = EthersTx.from(signedTx);
    expect(tx.type).toBe(2);
    expect(tx.from).toBe(FROM);
    expect(tx.to).toBe(HOT);
    expect(tx.value).toBe(10n ** 18n);
    expect(tx.nonce).toBe(7);
    expect(tx.chainId).toBe(11155111n);
    expect(tx.gasLimit).toBe(21000n);
    expect(tx.maxFeePerGas).toBe(30_000_000_000n);
    expect(tx.maxPriorityFeePerGas).toBe(1_000_000_000n);
    expect(tx.data).toBe('0x');
    expect(tx.hash).toBe(txHash);
  });

  it('when the signature comes from another key, then assembly refuses with signature_mismatch', () => {
    const prepared = buildEthereumTransfer(transfer);
    const other = deviceSign(prepared.digest, hexToBytes('47'.repeat(32)));
    expect(() => assembleEthereumSigned(prepared, other, SIGNER)).toThrow(expect.objectContaining({ code: 'signature_mismatch' }));
  });

  it('when the recovery id is flipped, then assembly refuses it (the transaction would recover to another sender)', () => {
    const prepared = buildEthereumTransfer(transfer);
    const sig = deviceSign(prepared.digest);
    const flipped = { signature: sig.signature, recovery: (1 - sig.recovery) as 0 | 1 };
    expect(() => assembleEthereumSigned(prepared, flipped, SIGNER)).toThrow(expect.objectContaining({ code: 'signature_mismatch' }));
  });

  it('when the pool key does not belong to the pool address, then assembly refuses even a good signature', () => {
    const prepared = buildEthereumTransfer(transfer);
    expect(() => assembleEthereumSigned(prepared, deviceSign(prepared.digest), { ...SIGNER, address: HOT })).toThrow(
      expect.objectContaining({ code: 'signature_mismatch', message: expect.stringMatching(/not the pool address/) }),
    );
  });

  it('when the signature has a high S, then assembly refuses it', () => {
    const prepared = buildEthereumTransfer(transfer);
    const sig = deviceSign(prepared.digest);
    const n = secp256k1.Point.CURVE().n;
    const s = BigInt('0x' + bytesToHex(sig.signature.slice(32)));
    const high = new Uint8Array(64);
    high.set(sig.signature.slice(0, 32));
    high.set(hexToBytes((n - s).toString(16).padStart(64, '0')), 32);
    expect(() => assembleEthereumSigned(prepared, { signature: high, recovery: (1 - sig.recovery) as 0 | 1 }, SIGNER)).toThrow(CustodyError);
  });

  it('when fields are out of range, then the build is refused naming the field', () => {
    expect(() => buildEthereumTransfer({ ...transfer, gasLimit: 20999n })).toThrow(/"gasLimit"/);
    expect(() => buildEthereumTransfer({ ...transfer, fees: { kind: 'eip1559', maxFeePerGas: 2n, maxPriorityFeePerGas: 3n } })).toThrow(/maxPriorityFeePerGas/);
    expect(() => buildEthereumTransfer({ ...transfer, intent: { ...transfer.intent, amount: 0n } })).toThrow(/"amount"/);
    expect(() => buildEthereumTransfer({ ...transfer, intent: { ...transfer.intent, asset: 'erc721:0x00' } })).toThrow(/expected ETH or erc20/);
    expect(() => buildEthereumTransfer({ ...transfer, nonce: 1n << 64n })).toThrow(/"nonce"/);
  });
});

describe('legacy EIP-155 and ERC-20', () => {
  it('when the EIP-155 example is built and signed with its key, then the signing data, hash and signed transaction are the published ones', () => {
    const t: EthereumTransfer = { chainId: 1n, nonce: 9n, gasLimit: 21000n, fees: { kind: 'legacy', gasPrice: 20_000_000_000n }, intent: { asset: 'ETH', recipient: '0x3535353535353535353535353535353535353535', amount: 10n ** 18n } };
    const prepared = buildEthereumTransfer(t);
    expect(prepared.unsignedTx).toBe(eip155.signingData);
    expect('0x' + bytesToHex(prepared.digest)).toBe(eip155.signingHash);
    const key = hexToBytes(eip155.privateKey);
    const from = ethAddressFromPublicKey(secp256k1.getPublicKey(key, true));
    const signed = assembleEthereumSigned(prepared, deviceSign(prepared.digest, key), { address: from, publicKey: bytesToHex(secp256k1.getPublicKey(key, false)) });
    expect(signed.signedTx).toBe(eip155.signedTx);
    expect(EthersTx.from(signed.signedTx).signature?.networkV).toBe(BigInt(eip155.v));
    expect(EthersTx.from(signed.signedTx).from).toBe(from);
  });

  it('when an ERC-20 transfer is built and signed, then ethers reads transfer(recipient, amount) to the token contract with no ETH', () => {
    const prepared = buildEthereumTransfer({ ...transfer, gasLimit: 65000n, intent: { asset: `erc20:${TOKEN.toLowerCase()}`, recipient: HOT, amount: 42n } });
    expect(prepared.transfer.intent.asset).toBe(`erc20:${TOKEN}`);
    const tx = EthersTx.from(assembleEthereumSigned(prepared, deviceSign(prepared.digest), SIGNER).signedTx);
    expect(tx.to).toBe(TOKEN);
    expect(tx.value).toBe(0n);
    expect(tx.from).toBe(FROM);
    const call = new Interface(['function transfer(address to, uint256 amount)']).parseTransaction({ data: tx.data });
    expect(call?.name).toBe('transfer');
    expect(call?.args.toArray()).toEqual([HOT, 42n]);
  });
});

describe('decoding an unsigned transaction', () => {
  const unsignedOf = (fields: Record<string, unknown>) => EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, gasLimit: 21000n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, to: HOT, value: 5n, ...fields }).unsignedSerialized;
  const erc20 = new Interface(['function transfer(address to, uint256 amount)', 'function approve(address spender, uint256 amount)']);

  it('when a plain transfer made by ethers is decoded, then every field is read back', () => {
    const prepared = decodeEthereumUnsignedTx(unsignedOf({}), 11155111n);
    expect(prepared.transfer).toEqual({ chainId: 11155111n, nonce: 1n, gasLimit: 21000n, fees: { kind: 'eip1559', maxFeePerGas: 2n, maxPriorityFeePerGas: 1n }, intent: { asset: 'ETH', recipient: HOT, amount: 5n } });
  });

  it('when an ERC-20 transfer made by ethers is decoded, then the token, recipient and amount are read from the call', () => {
    const data = erc20.encodeFunctionData('transfer', [HOT, 123456789n]);
    const prepared = decodeEthereumUnsignedTx(unsignedOf({ to: TOKEN, value: 0n, data, gasLimit: 65000n }), 11155111n);
    expect(prepared.transfer.intent).toEqual({ asset: `erc20:${TOKEN}`, recipient: HOT, amount: 123456789n });
  });

  it('when a legacy EIP-155 transaction made by ethers is decoded, then its gas price and chain id are read', () => {
    const legacy = EthersTx.from({ type: 0, chainId: 11155111n, nonce: 3, gasLimit: 21000n, gasPrice: 7n, to: HOT, value: 9n }).unsignedSerialized;
    expect(decodeEthereumUnsignedTx(legacy, 11155111n).transfer).toMatchObject({ fees: { kind: 'legacy', gasPrice: 7n }, nonce: 3n });
  });

  it('when the transaction calls another function, then it is decoded as a contract call (contract, selector, value) for the policy to judge', () => {
    const data = erc20.encodeFunctionData('approve', [HOT, 1n]);
    const p = decodeEthereumUnsignedTx(unsignedOf({ to: TOKEN, value: 7n, data }), 11155111n);
    expect(p.transfer.intent).toEqual({ asset: 'ETH', recipient: getAddress(TOKEN), amount: 7n, data: data.slice(2) });
    expect(data.slice(0, 10)).toBe(erc20.getFunction('approve')?.selector);
  });

  const refusals: [string, () => string, bigint, RegExp][] = [
    ['another chain id', () => unsignedOf({ chainId: 1n }), 11155111n, /chain id 1, not 11155111/],
    ['a truncated ERC-20 call', () => unsignedOf({ to: TOKEN, value: 0n, data: '0xa9059cbb' }), 11155111n, /exactly 68 bytes/],
    ['ETH sent with a call', () => unsignedOf({ to: TOKEN, value: 1n, data: erc20.encodeFunctionData('transfer', [HOT, 1n]) }), 11155111n, /sends ETH together with an ERC-20 transfer/],
    ['call data shorter than a selector', () => unsignedOf({ to: TOKEN, value: 0n, data: '0x0102' }), 11155111n, /shorter than a 4-byte selector/],
    ['a legacy transaction without chain id', () => EthersTx.from({ type: 0, nonce: 1, gasLimit: 21000n, gasPrice: 2n, to: HOT, value: 5n }).unsignedSerialized, 11155111n, /no chain id|chain id/],
    ['an EIP-2930 type', () => EthersTx.from({ type: 1, chainId: 11155111n, nonce: 1, gasLimit: 21000n, gasPrice: 2n, to: HOT, value: 5n }).unsignedSerialized, 11155111n, /type 0x01/],
    ['an access list', () => unsignedOf({ accessList: [{ address: HOT, storageKeys: [] }] }), 11155111n, /access list/],
    ['no destination', () => unsignedOf({ to: null, data: '0x00' }), 11155111n, /destination/],
    ['trailing bytes', () => unsignedOf({}) + '00', 11155111n, /cannot be decoded|canonical/],
    ['not hex', () => '0xzz', 11155111n, /hex/],
  ];
  for (const [name, make, chainId, message] of refusals) {
    it(`when the transaction has ${name}, then it is refused with a clear reason`, () => {
      expect(() => decodeEthereumUnsignedTx(make(), chainId)).toThrow(message);
    });
  }

  it('when any transfer is built, then decoding its bytes gives the same transfer (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          chainId: fc.bigInt({ min: 1n, max: (1n << 32n) - 1n }),
          nonce: fc.bigInt({ min: 0n, max: (1n << 64n) - 2n }),
          gasLimit: fc.bigInt({ min: 21000n, max: 30_000_000n }),
          maxFeePerGas: fc.bigInt({ min: 1n, max: 10n ** 30n }),
          value: fc.bigInt({ min: 1n, max: (1n << 255n) }),
        }),
        (r) => {
          const t: EthereumTransfer = {
            chainId: r.chainId,
            nonce: r.nonce,
            gasLimit: r.gasLimit,
            fees: r.maxFeePerGas % 2n === 0n ? { kind: 'eip1559', maxFeePerGas: r.maxFeePerGas, maxPriorityFeePerGas: r.maxFeePerGas / 2n } : { kind: 'legacy', gasPrice: r.maxFeePerGas },
            intent: r.value % 3n === 0n ? { asset: `erc20:${TOKEN}`, recipient: HOT, amount: r.value } : { asset: 'ETH', recipient: HOT, amount: r.value },
          };
          const built = buildEthereumTransfer(t);
          const decoded = decodeEthereumUnsignedTx(built.unsignedTx, r.chainId);
          expect(decoded.transfer).toEqual(built.transfer);
          expect(decoded.digest).toEqual(built.digest);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('when random bytes are decoded, then only ValidationError comes out (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (bytes) => {
        try {
          decodeEthereumUnsignedTx('0x02' + bytesToHex(bytes), 11155111n);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
