/**
 * Checks that a device's ECDSA signature (r, s, recovery id) over a digest recovers to the pool's own
 * secp256k1 key, without recovering a public key.
 *
 * Recovery with id v computes R = lift_x(r) with y of parity v and Q' = r⁻¹(s·R − z·G); Q' equals the
 * pool key Q exactly when R = u1·G + u2·Q with u1 = z·s⁻¹ and u2 = r·s⁻¹. So the signature recovers
 * to Q exactly when that point R is not infinity, its x coordinate is r (not merely r mod n: recovery
 * ids 2 and 3 cannot be carried by an Ethereum transaction) and its y has the parity v.
 *
 * Computed this way, both multiplications use a fixed base: G's table is noble's, and the pool key's
 * table is built once and kept for the most recently used keys, which makes the check about 2.5 times
 * faster than a recovery (bench/lifecycle.ts measures both).
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { ethAddressFromPublicKey } from './address.js';

type Point = InstanceType<typeof secp256k1.Point>;
const Point = secp256k1.Point;
const Fn = Point.Fn;

/** wNAF window of a pool key's table: 4 builds in ~10 ms and is as fast as 6 or 8 here. */
const KEY_WINDOW = 4;
/** Pool keys whose tables are kept (about 150 KiB each); the least recently used goes first. */
const KEY_TABLES = 64;

interface PoolKeyTable {
  readonly point: Point;
  /** EIP-55 address of the key. */
  readonly address: string;
}

const tables = new Map<string, PoolKeyTable>();

function keyTable(publicKeyHex: string): PoolKeyTable {
  const cached = tables.get(publicKeyHex);
  if (cached) {
    // Most recently used last: a Map keeps insertion order.
    tables.delete(publicKeyHex);
    tables.set(publicKeyHex, cached);
    return cached;
  }
  const point = Point.fromHex(publicKeyHex);
  point.precompute(KEY_WINDOW, false);
  const table = { point, address: ethAddressFromPublicKey(point.toBytes(false)) };
  tables.set(publicKeyHex, table);
  if (tables.size > KEY_TABLES) tables.delete(tables.keys().next().value as string);
  return table;
}

/** EIP-55 address of a secp256k1 public key (SEC1 hex), remembered with the key's table. */
export function addressOfKey(publicKeyHex: string): string {
  return keyTable(publicKeyHex).address;
}

/**
 * True when (r, s) with recovery id `recovery` is a signature of `digest` (32 bytes, already hashed)
 * that recovers to `publicKeyHex` (SEC1, compressed or not). Any r or s outside [1, n) is false.
 */
export function recoversTo(digest: Uint8Array, r: bigint, s: bigint, recovery: 0 | 1, publicKeyHex: string): boolean {
  if (digest.length !== 32) throw new RangeError(`"digest" expected 32 bytes, got ${digest.length}`);
  if (!Fn.isValidNot0(r) || !Fn.isValidNot0(s)) return false;
  const q = keyTable(publicKeyHex).point;
  // bits2int of a 256-bit digest for the 256-bit order is the digest itself, reduced mod n.
  const z = Fn.create(bytesToNumberBE(digest));
  const sInv = Fn.inv(s);
  const R = Point.BASE.multiplyUnsafe(Fn.mul(z, sInv)).add(q.multiplyUnsafe(Fn.mul(r, sInv)));
  if (R.is0()) return false;
  const { x, y } = R.toAffine();
  return x === r && (y & 1n) === BigInt(recovery);
}
