/**
 * API tokens (SPEC section 4): random, shown once, stored only as their sha256.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { ValidationError } from '../../common/errors.js';
import { APPROVER_ID } from '../domain/pool.js';
import { ROLES, type Principal, type Role } from '../domain/principal.js';
import type { Store } from '../store/store.js';

export const TOKEN_PREFIX = 'cgt_';

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function assertRole(value: unknown): Role {
  if (typeof value !== 'string' || !(ROLES as readonly string[]).includes(value)) {
    throw new ValidationError('invalid_role', `role must be one of ${ROLES.join(', ')}, got "${String(value)}"`);
  }
  return value as Role;
}

export interface CreatedToken {
  readonly token: string;
  readonly principal: Principal;
}

/**
 * Creates a principal and its token. An approver's (or admin's) name must be an enrolled approver id,
 * since approvals are checked against that approver's key.
 */
export async function createToken(store: Store, role: Role, name: string, now: number): Promise<CreatedToken> {
  if (!APPROVER_ID.test(name)) {
    throw new ValidationError('invalid_name', `name must be 1-64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit; got "${name}"`);
  }
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const principal: Principal = { id: randomUUID(), name, role, tokenHash: hashToken(token), createdAt: now };
  await store.transaction(async (tx) => {
    if ((role === 'approver' || role === 'admin') && !(await tx.getApprover(name))) {
      throw new ValidationError(
        'unknown_approver',
        `"${name}" is not an enrolled approver; ${role} tokens are issued to approver ids of the ceremony plan (run custody ceremony run first)`,
      );
    }
    await tx.insertPrincipal(principal);
    await tx.appendAudit(
      { type: 'principal.created', actor: 'cli', subject: `principal:${principal.id}`, data: { name, role, tokenSha256: principal.tokenHash } },
      now,
    );
  });
  return { token, principal };
}

export async function principalForToken(store: Store, token: string): Promise<Principal | null> {
  return store.read((r) => r.principalByTokenHash(hashToken(token)));
}
