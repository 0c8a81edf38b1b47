/**
 * Principals: holders of API tokens, with one role each (SPEC section 4). Tokens are stored hashed.
 */
export const ROLES = ['requester', 'approver', 'admin', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  readonly id: string;
  /** For an approver (and an admin), the approver id of the plan; otherwise a free name. */
  readonly name: string;
  readonly role: Role;
  /** sha256 of the token, hex. */
  readonly tokenHash: string;
  readonly createdAt: number;
}
