/**
 * The OpenAPI 3.1 document of the HTTP API (SPEC section 6), served at GET /openapi.json. Request
 * schemas come from the same zod schemas the routes validate with, so the document follows the code.
 */
import { z } from 'zod';
import { approvalBodySchema, approversProposalSchema, freezeBodySchema, policyProposalSchema, withdrawalBodySchema } from './schemas.js';
import { WITHDRAWAL_STATES } from '../domain/withdrawal.js';
import { DEVICE_RULES } from '../../common/sim-protocol.js';

const json = (schema: object) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: ref('Problem') } } });
const errors = {
  '400': problemResponse('invalid input: the field at fault is named'),
  '401': problemResponse('missing or unknown token'),
  '403': problemResponse('wrong role or not allowed for this principal'),
};

export function openApiDocument(): Record<string, unknown> {
  const jsonSchema = (s: z.ZodType) => z.toJSONSchema(s, { target: 'draft-2020-12' });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Custody signing gateway',
      version: '1',
      description:
        'Withdrawals from segregated pools, released only when the pool policy and the M-of-N approver quorum are satisfied. Amounts are decimal strings of base units.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        WithdrawalRequest: jsonSchema(withdrawalBodySchema),
        ApprovalRequest: jsonSchema(approvalBodySchema),
        FreezeRequest: jsonSchema(freezeBodySchema),
        PolicyProposalRequest: jsonSchema(policyProposalSchema),
        ApproversProposalRequest: jsonSchema(approversProposalSchema),
        Proposal: {
          type: 'object',
          properties: {
            id: { type: 'string', format: 'uuid' },
            pool: { type: 'string' },
            action: { type: 'string', enum: ['policy', 'unfreeze', 'approvers', 'attest-control'] },
            change: { type: 'object' },
            binding: { type: 'object', description: 'the pool\'s device binding once applied: approvers and base threshold' },
            proposedBy: { type: 'string' },
            requiredApprovals: { type: 'integer' },
            state: { type: 'string', enum: ['pending', 'applied', 'rejected', 'failed'] },
            approvalMessage: { type: 'string', description: 'RFC 8785 custody.governance message the admins sign' },
            approvals: { type: 'array', items: { type: 'object' } },
            appliedVersion: { type: ['integer', 'null'] },
            reason: { type: ['string', 'null'] },
            before: {
              type: ['object', 'null'],
              description:
                'GET /v1/proposals/{id} only: the pool as the message\'s "before" names it, in full, for the admin\'s client to show the change against after checking it hashes to the message: the policy document of version before.policyVersion, the approvers with their public keys, the base threshold',
              properties: {
                policyVersion: { type: 'integer' },
                policy: { type: ['object', 'null'] },
                approvers: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, publicKey: { type: 'string' } } } },
                threshold: { type: 'integer' },
              },
            },
          },
        },
        Decision: {
          type: 'object',
          properties: {
            allowed: { type: 'boolean' },
            reasons: { type: 'array', items: ref('Reason') },
            requiredApprovals: { type: 'integer' },
            timelockUntil: { type: ['string', 'null'] },
            expiresAt: { type: ['string', 'null'] },
            policyVersion: { type: 'integer' },
            digest: { type: 'string' },
          },
        },
        Reason: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } },
        Withdrawal: {
          type: 'object',
          required: ['id', 'pool', 'chain', 'asset', 'amount', 'to', 'state', 'reasons', 'approvals', 'approvalMessage'],
          properties: {
            id: { type: 'string', format: 'uuid' },
            pool: { type: 'string' },
            chain: { type: 'string' },
            asset: { type: 'string' },
            amount: { type: 'string', description: 'base units' },
            to: { type: 'string' },
            maxFee: { type: 'string' },
            contractCall: {
              type: 'object',
              description: 'present when the transaction calls a contract other than by an ERC-20 transfer: the policy must list it in contractCalls',
              properties: { contract: { type: 'string' }, selector: { type: 'string' } },
            },
            state: { type: 'string', enum: [...WITHDRAWAL_STATES] },
            reasons: { type: 'array', items: ref('Reason') },
            requiredApprovals: { type: 'integer' },
            approvals: {
              type: 'array',
              items: {
                type: 'object',
                properties: { approver: { type: 'string' }, decision: { type: 'string', enum: ['approve', 'reject'] }, signature: { type: 'string' }, at: { type: 'string' } },
              },
            },
            approvalMessage: {
              type: 'string',
              description:
                'RFC 8785 canonical JSON, version 2, the approvers sign (decision "approve"; a rejection signs it with "reject"). It carries unsignedTx, the exact transaction the device signs: decode it from the message itself and check every field against your own decoding before signing',
            },
            digest: { type: 'string', description: 'hex digest the device signs' },
            unsignedTx: { type: 'string' },
            policyVersion: { type: 'integer' },
            createdAt: { type: 'string' },
            updatedAt: { type: 'string' },
            notBefore: { type: ['string', 'null'] },
            expiresAt: { type: ['string', 'null'] },
            signedTx: { type: 'string', description: 'broadcastable signed transaction, present once signed' },
            txHash: { type: 'string' },
          },
        },
        Pool: {
          type: 'object',
          description: 'pool, keys, addresses, policy document, usage against each limit, and controls: the time lock and fee cap per asset ("none" where the policy sets none)',
          properties: {
            freezeMessage: {
              type: ['string', 'null'],
              description:
                'admins only (GET /v1/pools/{pool}): the exact RFC 8785 custody.governance text (action "freeze", proposalId "freeze-<pool>-<sequence>") an admin signs to freeze the pool in its device too; null when no admins are enrolled. It changes whenever a governed change is applied',
            },
          },
        },
        FreezeOutcome: {
          type: 'object',
          required: ['signed', 'deviceFrozen', 'devices'],
          description: 'what a freeze reached: the gateway always; the device only with the admin\'s signature over freezeMessage',
          properties: {
            signed: { type: 'boolean', description: 'a signature over freezeMessage came with the freeze' },
            deviceFrozen: { type: 'boolean', description: 'every device holding the pool\'s keys froze the pool itself and refuses to sign for it until the admin quorum unfreezes it; false without a signature' },
            devices: {
              type: 'array',
              items: {
                type: 'object',
                required: ['device', 'frozen', 'reason'],
                properties: { device: { type: 'string' }, frozen: { type: 'boolean' }, reason: { type: ['string', 'null'], description: 'why this device is not frozen (no signature, a device that holds no freeze, a refusal)' } },
              },
            },
          },
        },
        Device: {
          type: 'object',
          required: ['type', 'status', 'keys'],
          description: 'a configured key device; a device that does not answer has "error" instead of its identity and rules',
          properties: {
            type: { type: 'string', enum: ['sim', 'ledger', 'pkcs11'] },
            status: { type: 'string', enum: ['ok', 'down'] },
            id: { type: 'string' },
            model: { type: 'string' },
            firmware: { type: 'string' },
            checksQuorum: { type: 'boolean', description: 'the device verifies the approvals itself before it signs' },
            attestationPublicKey: { type: ['string', 'null'] },
            enforces: {
              type: 'array',
              items: { type: 'string', enum: [...DEVICE_RULES] },
              description: 'the rules the device enforces itself whatever the gateway does, as its INFO lists them (the simulator: its rules; a Ledger and a PKCS#11 token: none)',
            },
            gatewayOnly: {
              type: 'array',
              items: { type: 'string', enum: [...DEVICE_RULES] },
              description: 'the other rules: for the pools whose keys this device holds they rest on the gateway alone (docs/threat-model.md)',
            },
            error: { type: 'string' },
            keys: {
              type: 'array',
              items: { type: 'object', properties: { pool: { type: 'string' }, chain: { type: 'string' }, address: { type: 'string' }, device: { type: 'string' }, handle: { type: 'string' } } },
            },
          },
        },
        AuditEntry: {
          type: 'object',
          properties: {
            seq: { type: 'integer' },
            at: { type: 'string' },
            type: { type: 'string' },
            actor: { type: 'string' },
            subject: { type: 'string' },
            data: { type: 'object' },
            prevHash: { type: 'string' },
            hash: { type: 'string' },
          },
        },
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail', 'code'],
          properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, code: { type: 'string' } },
        },
      },
    },
    paths: {
      '/healthz': { get: { security: [], summary: 'liveness', responses: { '200': { description: 'alive' } } } },
      '/readyz': { get: { security: [], summary: 'readiness: store and devices answer', responses: { '200': { description: 'ready' }, '503': { description: 'not ready' } } } },
      '/metrics': { get: { security: [], summary: 'Prometheus metrics: anyone on loopback, otherwise an auditor or admin token', responses: { '200': { description: 'text exposition format' }, '401': problemResponse('not on loopback and no token'), '403': problemResponse('wrong role') } } },
      '/openapi.json': { get: { security: [], summary: 'this document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
      '/v1/pools': { get: { summary: 'pools (any role)', responses: { '200': { description: 'pools', content: json({ type: 'object', properties: { pools: { type: 'array', items: ref('Pool') } } }) }, ...errors } } },
      '/v1/pools/{pool}': {
        get: { summary: 'one pool (any role)', parameters: [{ name: 'pool', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': { description: 'pool', content: json(ref('Pool')) }, ...errors, '404': problemResponse('no such pool') } },
      },
      '/v1/pools/{pool}/freeze': {
        post: {
          summary:
            'break glass: freeze the pool at once (admin). With "signature" (the calling admin\'s, Ed25519 or EIP-191, over the pool\'s freezeMessage) the signed message is forwarded to every device holding the pool\'s keys, which freezes the pool itself; without it only the gateway is frozen',
          parameters: [{ name: 'pool', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: false, content: json(ref('FreezeRequest')) },
          responses: {
            '200': { description: 'the frozen pool, and in "freeze" what the freeze reached', content: json({ allOf: [ref('Pool'), { type: 'object', properties: { freeze: ref('FreezeOutcome') } }] }) },
            ...errors,
            '400': problemResponse('invalid input; "signature" that does not verify with the admin\'s key over the current freezeMessage (code bad_freeze_signature): nothing is frozen'),
            '403': problemResponse('wrong role, or a signature from an admin who is not an enrolled admin of the ceremony'),
            '404': problemResponse('no such pool'),
          },
        },
      },
      '/v1/pools/{pool}/evaluate': {
        post: {
          summary: 'the policy decision for a withdrawal body now, creating nothing (requester, admin)',
          parameters: [{ name: 'pool', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: json(ref('WithdrawalRequest')) },
          responses: { '200': { description: 'decision with every reason', content: json(ref('Decision')) }, ...errors, '404': problemResponse('no such pool') },
        },
      },
      '/v1/pools/{pool}/policy': {
        post: {
          summary: 'propose a new policy version (admin); applied once adminQuorum other admins approve',
          parameters: [{ name: 'pool', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: json(ref('PolicyProposalRequest')) },
          responses: { '201': { description: 'proposal', content: json(ref('Proposal')) }, ...errors, '404': problemResponse('no such pool') },
        },
      },
      '/v1/pools/{pool}/unfreeze': {
        post: {
          summary: 'propose unfreezing (admin); applied once adminQuorum other admins approve',
          parameters: [{ name: 'pool', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '201': { description: 'proposal', content: json(ref('Proposal')) }, ...errors, '409': problemResponse('the pool is not frozen') },
        },
      },
      '/v1/pools/{pool}/approvers': {
        post: {
          summary: 'propose adding or removing pool approvers (admin); bound in the device once approved',
          parameters: [{ name: 'pool', in: 'path', required: true, schema: { type: 'string' } }],
          requestBody: { required: true, content: json(ref('ApproversProposalRequest')) },
          responses: { '201': { description: 'proposal', content: json(ref('Proposal')) }, ...errors },
        },
      },
      '/v1/proposals': {
        get: {
          summary: 'governance proposals (any role), newest first',
          parameters: [
            { name: 'pool', in: 'query', schema: { type: 'string' } },
            { name: 'state', in: 'query', schema: { type: 'string', enum: ['pending', 'applied', 'rejected', 'failed'] } },
          ],
          responses: { '200': { description: 'proposals', content: json({ type: 'object', properties: { proposals: { type: 'array', items: ref('Proposal') } } }) }, ...errors },
        },
      },
      '/v1/proposals/{id}': {
        get: {
          summary: 'one proposal with its approvals',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          responses: { '200': { description: 'proposal', content: json(ref('Proposal')) }, ...errors, '404': problemResponse('no such proposal') },
        },
      },
      '/v1/proposals/{id}/approvals': {
        post: {
          summary: 'approve or reject a proposal (admin other than the proposer): Ed25519 signature over approvalMessage with the posted decision',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          requestBody: { required: true, content: json(ref('ApprovalRequest')) },
          responses: {
            '200': { description: 'the proposal after the vote (applied when it completed the quorum)', content: json(ref('Proposal')) },
            ...errors,
            '409': problemResponse('already voted or not pending; or code stale_proposal: another change was applied since the proposal was made, so its message no longer names the pool as it is (the proposal is now failed: propose it again)'),
          },
        },
      },
      '/v1/withdrawals': {
        post: {
          summary: 'submit a withdrawal (requester)',
          parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 128 } }],
          requestBody: { required: true, content: json(ref('WithdrawalRequest')) },
          responses: {
            '201': { description: 'accepted, pending approval', content: json(ref('Withdrawal')) },
            '200': { description: 'the earlier request with this Idempotency-Key', content: json(ref('Withdrawal')) },
            ...errors,
            '409': problemResponse('idempotency key reused for another request, or the nonce is taken'),
            '412': problemResponse('denied by policy: the problem carries id, state "denied" and every reason'),
            '413': problemResponse('body larger than 64 KiB'),
          },
        },
        get: {
          summary: 'list withdrawals (any role), newest first',
          parameters: [
            { name: 'pool', in: 'query', schema: { type: 'string' } },
            { name: 'state', in: 'query', schema: { type: 'string', enum: [...WITHDRAWAL_STATES] } },
            { name: 'limit', in: 'query', schema: { type: 'string' } },
            { name: 'offset', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'withdrawals', content: json({ type: 'object', properties: { withdrawals: { type: 'array', items: ref('Withdrawal') } } }) }, ...errors },
        },
      },
      '/v1/withdrawals/{id}': {
        get: {
          summary: 'one withdrawal with its decision, approvals, approvalMessage and, once signed, signedTx and txHash',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          responses: { '200': { description: 'withdrawal', content: json(ref('Withdrawal')) }, ...errors, '404': problemResponse('no such withdrawal') },
        },
      },
      '/v1/withdrawals/{id}/approvals': {
        post: {
          summary: 'approve or reject (approver): Ed25519 signature over approvalMessage with the posted decision',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          requestBody: { required: true, content: json(ref('ApprovalRequest')) },
          responses: {
            '200': { description: 'the withdrawal after the vote (signed when this vote completed the quorum)', content: json(ref('Withdrawal')) },
            ...errors,
            '404': problemResponse('no such withdrawal'),
            '409': problemResponse('already voted, or the request takes no more approvals'),
          },
        },
      },
      '/v1/withdrawals/{id}/cancel': {
        post: {
          summary: 'cancel before signing (the requester who made it, or an admin)',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
          responses: { '200': { description: 'cancelled', content: json(ref('Withdrawal')) }, ...errors, '404': problemResponse('no such withdrawal'), '409': problemResponse('too late to cancel') },
        },
      },
      '/v1/devices': {
        get: {
          summary: 'the configured key devices (auditor, admin): state, identity, the rules each enforces itself and those resting on the gateway alone, the pool keys it holds',
          responses: { '200': { description: 'devices', content: json({ type: 'object', properties: { devices: { type: 'array', items: ref('Device') } } }) }, ...errors },
        },
      },
      '/v1/audit': {
        get: {
          summary: 'audit entries after a sequence number (auditor, admin)',
          parameters: [
            { name: 'after', in: 'query', schema: { type: 'string' } },
            { name: 'limit', in: 'query', schema: { type: 'string' } },
          ],
          responses: { '200': { description: 'entries', content: json({ type: 'object', properties: { entries: { type: 'array', items: ref('AuditEntry') }, next: { type: ['integer', 'null'] } } }) }, ...errors },
        },
      },
      '/v1/audit/verify': {
        get: {
          summary: 'recompute the hash chain (auditor, admin)',
          responses: { '200': { description: 'the chain verifies' }, '409': { description: 'the chain is broken: firstBad names the entry' }, ...errors },
        },
      },
    },
  };
}
