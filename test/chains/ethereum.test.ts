/**
 * Ethereum payloads, checked with code we did not write (ethers) and published vectors (EIP-55).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Transaction as EthersTx, getAddress, keccak256 } from 'ethers';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { assertEthAddress, ethAddressFromPublicKey } from '../../src/chains/ethereum/address.js';
import { assembleEthereumSigned, buildEthereumTransfer, decodeEthereumUnsignedTx, type EthereumTransfer } from '../../src/chains/ethereum/eip1559.js';
import { CustodyError, ValidationError } from '../../src/domain/errors.js';

const vectors = (name: string) => JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', name), 'utf8'));
const eip55 = vectors('eip55-addresses.json') as { valid: string[]; checksummed: Record<string, string> };
const keys = vectors('secp256k1-eth-addresses.json') as { vectors: { privateKey: string; address: string }[] };

const SECRET = hexToBytes('46'.repeat(32));
const FROM = ethAddressFromPublicKey(secp256k1.getPublicKey(SECRET, true));
const transfer: EthereumTransfer = {
  chainId: 11155111n,
  nonce: 7n,
  gasLimit: 21000n,
  maxFeePerGas: 30_000_000_000n,
  maxPriorityFeePerGas: 1_000_000_000n,
  to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72',
  value: 10n ** 18n,
};

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

    const { signedTx, txHash } = assembleEthereumSigned(prepared, deviceSign(prepared.digest), FROM);
    const tx = EthersTx.from(signedTx);
    expect(tx.type).toBe(2);
    expect(tx.from).toBe(FROM);
    expect(tx.to).toBe(transfer.to);
    expect(tx.value).toBe(transfer.value);
    expect(tx.nonce).toBe(7);
    expect(tx.chainId).toBe(11155111n);
    expect(tx.gasLimit).toBe(21000n);
    expect(tx.maxFeePerGas).toBe(transfer.maxFeePerGas);
    expect(tx.maxPriorityFeePerGas).toBe(transfer.maxPriorityFeePerGas);
    expect(tx.data).toBe('0x');
    expect(tx.hash).toBe(txHash);
  });

  it('when the signature comes from another key, then assembly refuses with signature_mismatch', () => {
    const prepared = buildEthereumTransfer(transfer);
    const other = deviceSign(prepared.digest, hexToBytes('47'.repeat(32)));
    expect(() => assembleEthereumSigned(prepared, other, FROM)).toThrow(expect.objectContaining({ code: 'signature_mismatch' }));
  });

  it('when the signature has a high S, then assembly refuses it', () => {
    const prepared = buildEthereumTransfer(transfer);
    const sig = deviceSign(prepared.digest);
    const n = secp256k1.Point.CURVE().n;
    const s = BigInt('0x' + bytesToHex(sig.signature.slice(32)));
    const high = new Uint8Array(64);
    high.set(sig.signature.slice(0, 32));
    high.set(hexToBytes((n - s).toString(16).padStart(64, '0')), 32);
    expect(() => assembleEthereumSigned(prepared, { signature: high, recovery: (1 - sig.recovery) as 0 | 1 }, FROM)).toThrow(CustodyError);
  });

  it('when fields are out of range, then the build is refused naming the field', () => {
    expect(() => buildEthereumTransfer({ ...transfer, gasLimit: 20999n })).toThrow(/"gasLimit"/);
    expect(() => buildEthereumTransfer({ ...transfer, maxPriorityFeePerGas: transfer.maxFeePerGas + 1n })).toThrow(/maxPriorityFeePerGas/);
    expect(() => buildEthereumTransfer({ ...transfer, value: 0n })).toThrow(/"amount"/);
    expect(() => buildEthereumTransfer({ ...transfer, nonce: 1n << 64n })).toThrow(/"nonce"/);
  });
});

describe('decoding an unsigned transaction', () => {
  const unsignedOf = (fields: Record<string, unknown>) => EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, gasLimit: 21000n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, to: transfer.to, value: 5n, ...fields }).unsignedSerialized;

  it('when a plain transfer made by ethers is decoded, then every field is read back', () => {
    const prepared = decodeEthereumUnsignedTx(unsignedOf({}), 11155111n);
    expect(prepared.transfer).toEqual({ chainId: 11155111n, nonce: 1n, gasLimit: 21000n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, to: transfer.to, value: 5n });
  });

  const refusals: [string, () => string, bigint, RegExp][] = [
    ['another chain id', () => unsignedOf({ chainId: 1n }), 11155111n, /chain id 1, not 11155111/],
    ['call data', () => unsignedOf({ data: '0xa9059cbb' }), 11155111n, /call data/],
    ['an access list', () => unsignedOf({ accessList: [{ address: transfer.to, storageKeys: [] }] }), 11155111n, /access list/],
    ['no destination', () => unsignedOf({ to: null, data: '0x00' }), 11155111n, /call data|destination/],
    ['a legacy type', () => EthersTx.from({ type: 0, chainId: 11155111n, nonce: 1, gasLimit: 21000n, gasPrice: 2n, to: transfer.to, value: 5n }).unsignedSerialized, 11155111n, /type 2/],
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
          const t = { ...transfer, ...r, maxPriorityFeePerGas: r.maxFeePerGas / 2n };
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
