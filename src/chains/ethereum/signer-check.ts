/**
 * Checks that a device's ECDSA signature (r, s, recovery id) over a digest recovers to the pool's own
 * secp256k1 key, without recovering a public key.
 *
 * Recovery with id v computes R = lift_x(r) with y of parity v and Q' = r⁻¹(s·R − z·G); Q' equals the
 * pool key Q exactly when R = u1·G + u2·Q with u1 = z·s⁻¹ and u2 = r·s⁻¹. So the signature recovers
 * to Q exactly when that point R is not infinity, its x coordinate is r (not merely r mod n: recovery
 * ids 2 and 3 cannot be carried by an Ethereum transaction) and its y has the parity v.
 *
 * Computed this way, both multiplications have a fixed base: G's table is noble's, and a pool key in
 * steady use gets a table of its own, kept for the most recently used keys; the check is then about
 * twice as fast as a recovery, and without the table still a little faster (bench/lifecycle.ts
 * measures both).
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToNumberBE } from '@noble/curves/utils.js';
import { ethAddressFromPublicKey } from './address.js';

type Point = InstanceType<typeof secp256k1.Point>;
const Point = secp256k1.Point;
const Fn = Point.Fn;

/** wNAF window of a pool key's table: 4 builds in ~10 ms and checks as fast as 6 or 8 here. */
const KEY_WINDOW = 4;
/**
 * A key gets its table at this use: a table saves ~0.35 ms a check and costs ~10 ms to build, so
 * only a key in steady use (a hot pool) pays for one; the others are checked without.
 */
const BUILD_AT_USE = 32;
/** Keys remembered (point, address, uses), the least recently used forgotten first. */
const KEYS_KEPT = 4096;
/** Keys with a table (about 150 KiB each), the least recently used dropped first. */
const TABLES_KEPT = 64;

interface KnownKey {
  point: Point;
  /** EIP-55 address of the key. */
  readonly address: string;
  uses: number;
  table: boolean;
}

/** Map order is use order: the first entry is the least recently used. */
const known = new Map<string, KnownKey>();
let tables = 0;

function knownKey(publicKeyHex: string): KnownKey {
  let key = known.get(publicKeyHex);
  if (key) {
    known.delete(publicKeyHex);
  } else {
    const point = Point.fromHex(publicKeyHex);
    key = { point, address: ethAddressFromPublicKey(point.toBytes(false)), uses: 0, table: false };
    if (known.size >= KEYS_KEPT) forget(known.keys().next().value as string);
  }
  known.set(publicKeyHex, key);
  return key;
}

function forget(publicKeyHex: string): void {
  if (known.get(publicKeyHex)?.table) tables -= 1;
  known.delete(publicKeyHex);
}

/** The key's point, with its table once the key is in steady use. */
function keyPoint(publicKeyHex: string): Point {
  const key = knownKey(publicKeyHex);
  key.uses += 1;
  if (!key.table && key.uses >= BUILD_AT_USE) {
    if (tables >= TABLES_KEPT) {
      // A table lives as long as its point: a fresh point for the least recently used one drops it.
      for (const other of known.values()) {
        if (!other.table) continue;
        other.point = Point.fromAffine(other.point.toAffine());
        other.table = false;
        other.uses = 0;
        tables -= 1;
        break;
      }
    }
    key.point.precompute(KEY_WINDOW, false);
    key.table = true;
    tables += 1;
  }
  return key.point;
}

/** How many keys hold a table now (for tests and metrics). */
export function keyTablesHeld(): number {
  return tables;
}

/** EIP-55 address of a secp256k1 public key (SEC1 hex), remembered with the key. */
export function addressOfKey(publicKeyHex: string): string {
  return knownKey(publicKeyHex).address;
}

/**
 * True when (r, s) with recovery id `recovery` is a signature of `digest` (32 bytes, already hashed)
 * that recovers to `publicKeyHex` (SEC1, compressed or not). Any r or s outside [1, n) is false.
 */
export function recoversTo(digest: Uint8Array, r: bigint, s: bigint, recovery: 0 | 1, publicKeyHex: string): boolean {
  if (digest.length !== 32) throw new RangeError(`"digest" expected 32 bytes, got ${digest.length}`);
  if (!Fn.isValidNot0(r) || !Fn.isValidNot0(s)) return false;
  const q = keyPoint(publicKeyHex);
  // bits2int of a 256-bit digest for the 256-bit order is the digest itself, reduced mod n.
  const z = Fn.create(bytesToNumberBE(digest));
  const sInv = Fn.inv(s);
  const R = Point.BASE.multiplyUnsafe(Fn.mul(z, sInv)).add(q.multiplyUnsafe(Fn.mul(r, sInv)));
  if (R.is0()) return false;
  const { x, y } = R.toAffine();
  return x === r && (y & 1n) === BigInt(recovery);
}
