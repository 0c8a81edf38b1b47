/**
 * Governance routes (SPEC sections 4 and 6): proposals for a new policy version, unfreezing, and
 * approver changes, each needing the admin quorum; and the policy's decision on a request without
 * creating it.
 */
import { Router } from 'express';
import { isValidApproverKey } from '../../../common/approver-key.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { NotFoundError, ValidationError } from '../../../common/errors.js';
import { POOL_ID } from '../../domain/pool.js';
import type { PolicyDocument } from '../../../common/policy/policy.js';
import type { ControlProof, Proposal, ProposalApproval } from '../../domain/proposal.js';
import type { ServiceContext } from '../../service/context.js';
import { approveProposal, getProposal, proposeChange, type ProposalBefore } from '../../service/governance.js';
import { evaluateRequest } from '../../service/submit-withdrawal.js';
import { requireRole } from '../auth.js';
import {
  attestControlSchema,
  approvalBodySchema,
  approversProposalSchema,
  emptyBodySchema,
  parseWith,
  policyProposalSchema,
  proposalListQuerySchema,
  WITHDRAWAL_ID,
  withdrawalBodySchema,
} from '../schemas.js';

function poolId(raw: unknown): string {
  if (typeof raw !== 'string' || !POOL_ID.test(raw)) throw new NotFoundError('pool_not_found', `pool "${String(raw).slice(0, 80)}" does not exist`);
  return raw;
}

function proposalId(raw: unknown): string {
  if (typeof raw !== 'string' || !WITHDRAWAL_ID.test(raw)) throw new NotFoundError('proposal_not_found', `proposal "${String(raw).slice(0, 80)}" does not exist`);
  return raw;
}

/** `before` (GET /v1/proposals/{id} only): the pool's policy document and approvers' keys the message's `before` names. */
export function proposalView(p: Proposal, approvals: readonly ProposalApproval[], proofs: readonly ControlProof[], before?: ProposalBefore | null): Record<string, unknown> {
  return {
    id: p.id,
    pool: p.poolId,
    action: p.change.action,
    change: p.change,
    binding: p.binding,
    proposedBy: p.proposedBy,
    requiredApprovals: p.requiredApprovals,
    state: p.state,
    approvalMessage: p.approvalMessage,
    approvals: approvals.map((a) => ({ admin: a.adminId, decision: a.decision, signature: a.signature, at: new Date(a.createdAt).toISOString() })),
    appliedVersion: p.appliedVersion,
    ...(p.change.action === 'attest-control'
      ? { proofs: proofs.map((x) => ({ pool: x.poolId, chain: x.chain, address: x.address, format: x.format, message: (p.change as { challenge: string }).challenge, signature: x.signature })) }
      : {}),
    reason: p.reason,
    ...(before !== undefined ? { before } : {}),
    createdAt: new Date(p.createdAt).toISOString(),
    updatedAt: new Date(p.updatedAt).toISOString(),
  };
}

export function governanceRoutes(ctx: ServiceContext): Router {
  const router = Router();
  const view = async (p: Proposal) => {
    const { approvals, proofs } = await getProposal(ctx, p.id);
    return proposalView(p, approvals, proofs);
  };

  router.post('/v1/pools/:pool/policy', async (req, res) => {
    const admin = requireRole(req, 'admin');
    const body = parseWith(policyProposalSchema, req.body, 'body');
    const p = await proposeChange(ctx, admin, poolId(req.params.pool), { action: 'policy', policy: body.policy as PolicyDocument });
    res.status(201).json(await view(p));
  });

  router.post('/v1/pools/:pool/unfreeze', async (req, res) => {
    const admin = requireRole(req, 'admin');
    parseWith(emptyBodySchema, req.body ?? {}, 'body');
    const p = await proposeChange(ctx, admin, poolId(req.params.pool), { action: 'unfreeze' });
    res.status(201).json(await view(p));
  });

  router.post('/v1/pools/:pool/approvers', async (req, res) => {
    const admin = requireRole(req, 'admin');
    const body = parseWith(approversProposalSchema, req.body, 'body');
    const add = (body.add ?? []).map((a) => ({ id: a.id, publicKey: a.publicKey.toLowerCase() }));
    for (const a of add) {
      if (!isValidApproverKey(hexToBytes(a.publicKey))) {
        throw new ValidationError('invalid_public_key', `"add": the key of "${a.id}" is not a valid Ed25519 or secp256k1 public key`);
      }
    }
    const p = await proposeChange(ctx, admin, poolId(req.params.pool), { action: 'approvers', add, remove: body.remove ?? [] });
    res.status(201).json(await view(p));
  });

  router.post('/v1/pools/:pool/attest-control', async (req, res) => {
    const admin = requireRole(req, 'admin');
    const body = parseWith(attestControlSchema, req.body, 'body');
    const p = await proposeChange(ctx, admin, poolId(req.params.pool), { action: 'attest-control', challenge: body.challenge });
    res.status(201).json(await view(p));
  });

  router.get('/v1/proposals', async (req, res) => {
    requireRole(req, 'requester', 'approver', 'admin', 'auditor');
    const q = parseWith(proposalListQuerySchema, req.query, 'query');
    const list = await ctx.store.read((r) =>
      r.listProposals({ ...(q.pool ? { poolId: q.pool } : {}), ...(q.state ? { state: q.state } : {}), limit: q.limit ? Number(q.limit) : 100 }),
    );
    const items = [];
    for (const p of list) items.push(await view(p));
    res.json({ proposals: items });
  });

  router.get('/v1/proposals/:id', async (req, res) => {
    requireRole(req, 'requester', 'approver', 'admin', 'auditor');
    const { proposal, approvals, proofs, before } = await getProposal(ctx, proposalId(req.params.id));
    res.json(proposalView(proposal, approvals, proofs, before));
  });

  router.post('/v1/proposals/:id/approvals', async (req, res) => {
    const admin = requireRole(req, 'admin');
    const id = proposalId(req.params.id);
    const body = parseWith(approvalBodySchema, req.body, 'body');
    res.json(await view(await approveProposal(ctx, admin, id, body)));
  });

  router.post('/v1/pools/:pool/evaluate', async (req, res) => {
    requireRole(req, 'requester', 'admin');
    const body = parseWith(withdrawalBodySchema, req.body, 'body');
    const pool = poolId(req.params.pool);
    if (body.pool !== pool) throw new ValidationError('pool_mismatch', `"pool" is ${body.pool} but the route names ${pool}`);
    const e = await evaluateRequest(ctx, body);
    res.json({
      pool: e.pool,
      chain: e.chain,
      asset: e.asset,
      amount: e.amount.toString(),
      to: e.to,
      maxFee: e.maxFee.toString(),
      digest: e.digest,
      policyVersion: e.policyVersion,
      allowed: e.decision.allowed,
      reasons: e.decision.reasons,
      requiredApprovals: e.decision.requiredApprovals,
      timelockUntil: e.decision.timelockUntil === null ? null : new Date(e.decision.timelockUntil).toISOString(),
      expiresAt: e.decision.expiresAt === null ? null : new Date(e.decision.expiresAt).toISOString(),
    });
  });

  return router;
}
