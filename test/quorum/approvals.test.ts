/**
 * Approval messages (RFC 8785), approver signatures (RFC 8032 vectors) and M-of-N counting.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { parseApprovalMessage } from '../../common/approval-message.js';
import { approvalMessageFor, type ApprovalContext, type ApprovalSubject } from '../../src/quorum/approval-message.js';
import { assertSignatureHex, verifyApproverSignature } from '../../src/quorum/approver-signature.js';
import { isValidApproverKey } from '../../common/approver-key.js';
import { checkApproval, tally } from '../../src/quorum/count.js';
import type { Approval } from '../../src/domain/withdrawal.js';
import type { ChainId } from '../../common/chain-id.js';

const rfc = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'rfc8032-ed25519.json'), 'utf8')) as {
  vectors: { name: string; secretKey: string; publicKey: string; message: string; signature: string }[];
};

const subject: ApprovalSubject = {
  id: '6f1c1f4e-3c1a-4c59-9a4e-2b9f4f3e8d10',
  poolId: 'client-a',
  chain: 'eip155:11155111' as ChainId,
  asset: 'ETH',
  amount: 500000000000000000n,
  to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72',
  maxFee: 630000000000000n,
  digest: 'ab'.repeat(32),
  policyVersion: 1,
  unsignedTx: '0x02e983aa36a780843b9aca0085174876e800825208948ba1f109551bd432803012645ac136ddd64dba728806f05b59d3b2000080c0',
};
const plain: ApprovalContext = { call: null, timelockMs: null };
const message = (s: ApprovalSubject, decision: 'approve' | 'reject', context: ApprovalContext = plain) => approvalMessageFor(s, context, decision);

describe('RFC 8032 vectors', () => {
  for (const v of rfc.vectors) {
    it(`when ${v.name} is signed and verified, then noble reproduces the published signature and our verifier accepts it`, () => {
      expect(bytesToHex(ed25519.getPublicKey(hexToBytes(v.secretKey)))).toBe(v.publicKey);
      expect(bytesToHex(ed25519.sign(hexToBytes(v.message), hexToBytes(v.secretKey)))).toBe(v.signature);
      expect(ed25519.verify(hexToBytes(v.signature), hexToBytes(v.message), hexToBytes(v.publicKey))).toBe(true);
    });
  }
});

describe('approval messages', () => {
  it('when a message is built, then it is the exact RFC 8785 text with sorted keys', () => {
    expect(message(subject, 'approve')).toMatchInlineSnapshot(`"{"amount":"500000000000000000","asset":"ETH","chain":"eip155:11155111","decision":"approve","digest":"abababababababababababababababababababababababababababababababab","kind":"custody.approval","maxFee":"630000000000000","policyVersion":1,"pool":"client-a","requestId":"6f1c1f4e-3c1a-4c59-9a4e-2b9f4f3e8d10","timelock":"none","to":"0x8ba1f109551bD432803012645Ac136ddd64DBA72","unsignedTx":"0x02e983aa36a780843b9aca0085174876e800825208948ba1f109551bd432803012645ac136ddd64dba728806f05b59d3b2000080c0","version":2}"`);
    expect(parseApprovalMessage(message(subject, 'reject')).decision).toBe('reject');
  });

  it('when the request calls a contract, then the message carries the decoded call and parses back', () => {
    const call = { contract: subject.to, selector: '0x095ea7b3' };
    const text = message(subject, 'approve', { call, timelockMs: null });
    expect(text).toContain('"call":{"contract":"0x8ba1f109551bD432803012645Ac136ddd64DBA72","selector":"0x095ea7b3"}');
    expect(parseApprovalMessage(text).call).toEqual(call);
    expect(() => parseApprovalMessage(text.replace('0x095ea7b3', '0x095EA7B3'))).toThrow(/"selector" must be 0x and 8 lowercase hex/);
  });

  it('when a request is time-locked, replaces another or pays another pool, then the message says so', () => {
    const text = message(subject, 'approve', { call: null, timelockMs: 86_400_000, replaces: 'r-1', destinationPool: 'pool-b' });
    expect(parseApprovalMessage(text)).toMatchObject({ timelock: '1d', replaces: 'r-1', destinationPool: 'pool-b' });
    expect(parseApprovalMessage(message(subject, 'approve')).timelock).toBe('none');
  });

  it('when a version 1 message (without the transaction) is read, then it is refused and says why', () => {
    const v1 = JSON.parse(message(subject, 'approve')) as Record<string, unknown>;
    delete v1.unsignedTx;
    delete v1.timelock;
    v1.version = 1;
    expect(() => parseApprovalMessage(JSON.stringify(v1))).toThrow(/version must be 2 \(got 1\): version 1 messages do not carry the transaction/);
  });

  it('when a message is re-spaced, reordered or given an extra field, then parsing refuses it', () => {
    const text = message(subject, 'approve');
    expect(() => parseApprovalMessage(JSON.stringify(JSON.parse(text), null, 1))).toThrow(/canonical/);
    expect(() => parseApprovalMessage(JSON.stringify({ ...JSON.parse(text), extra: 1 }))).toThrow(/unknown field "extra"/);
    expect(() => parseApprovalMessage(text.replace('"kind":"custody.approval"', '"kind":"other"'))).toThrow(/kind/);
    expect(() => parseApprovalMessage('not json')).toThrow(/not JSON/);
  });
});

describe('approver signatures', () => {
  it('when an Ed25519 key is of small order or not a point, then it cannot be enrolled', () => {
    expect(isValidApproverKey(hexToBytes('01' + '00'.repeat(31)))).toBe(false);
    expect(isValidApproverKey(hexToBytes('ec' + 'ff'.repeat(30) + '7f'))).toBe(false);
    expect(isValidApproverKey(hexToBytes(rfc.vectors[0]!.publicKey))).toBe(true);
  });

  it('when a hardware wallet key signs the message as an EIP-191 personal message (made by ethers), then it verifies; another message, key, recovery byte or a high-S twin does not', async () => {
    const { Wallet, Signature } = await import('ethers');
    const wallet = new Wallet('0x' + '42'.repeat(32));
    const pub = wallet.signingKey.compressedPublicKey.slice(2);
    const text = message(subject, 'approve');
    const sig = await wallet.signMessage(text);
    expect(verifyApproverSignature(pub, text, sig.slice(2))).toBe(true);
    expect(verifyApproverSignature(pub, message(subject, 'reject'), sig.slice(2))).toBe(false);
    expect(verifyApproverSignature(Wallet.createRandom().signingKey.compressedPublicKey.slice(2), text, sig.slice(2))).toBe(false);
    const s = Signature.from(sig);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const highS = s.r.slice(2) + (n - BigInt(s.s)).toString(16).padStart(64, '0') + (s.v === 27 ? '1c' : '1b');
    expect(verifyApproverSignature(pub, text, highS)).toBe(false);
    // v must be 27 or 28 and the right one: the other recovers another key, 0/1 is not the app's form.
    const body = sig.slice(2, 130);
    expect(verifyApproverSignature(pub, text, body + (s.v === 27 ? '1c' : '1b'))).toBe(false);
    expect(verifyApproverSignature(pub, text, body + (s.v === 27 ? '00' : '01'))).toBe(false);
    expect(() => assertSignatureHex('ab'.repeat(66), 'signature')).toThrow(/65-byte EIP-191 signature/);
  });

  const secret = hexToBytes(rfc.vectors[0]!.secretKey);
  const pub = rfc.vectors[0]!.publicKey;
  const text = message(subject, 'approve');
  const sig = bytesToHex(ed25519.sign(new TextEncoder().encode(text), secret));

  it('when alice signs the message, then it verifies with her key and not with bob\'s, nor over another message', () => {
    expect(verifyApproverSignature(pub, text, sig)).toBe(true);
    expect(verifyApproverSignature(rfc.vectors[1]!.publicKey, text, sig)).toBe(false);
    expect(verifyApproverSignature(pub, message({ ...subject, digest: 'cd'.repeat(32) }, 'approve'), sig)).toBe(false);
    expect(verifyApproverSignature(pub, message(subject, 'reject'), sig)).toBe(false);
  });

  it('when any bit of the signature flips, then it no longer verifies, and nothing throws (property)', () => {
    fc.assert(
      fc.property(fc.nat({ max: 511 }), (bit) => {
        const bytes = hexToBytes(sig);
        bytes[bit >> 3]! ^= 1 << (bit & 7);
        expect(verifyApproverSignature(pub, text, bytesToHex(bytes))).toBe(false);
      }),
      { numRuns: 300 },
    );
    expect(verifyApproverSignature('zz', text, sig)).toBe(false);
  });

  it('when a signature is not 64 bytes of hex, then it is refused naming the field', () => {
    expect(assertSignatureHex('0x' + sig.toUpperCase(), 'signature')).toBe(sig);
    expect(() => assertSignatureHex(sig.slice(2), 'signature')).toThrowErrorMatchingInlineSnapshot(`[ValidationError: "signature" expected a 64-byte Ed25519 signature (128 hex characters) or a 65-byte EIP-191 signature (130)]`);
  });
});

describe('counting approvals', () => {
  const vote = (approverId: string, decision: 'approve' | 'reject' = 'approve'): Approval => ({ withdrawalId: subject.id, approverId, decision, signature: '', message: '', createdAt: 0 });
  const pool = ['alice', 'bob', 'carol'];

  it('when the requester, an outsider or a repeat voter votes, then each is refused with its reason', () => {
    expect(checkApproval({ approverId: 'alice', requesterName: 'alice', poolApprovers: pool, existing: [] })?.code).toBe('requester_cannot_approve');
    expect(checkApproval({ approverId: 'dave', requesterName: 'ops', poolApprovers: pool, existing: [] })?.code).toBe('not_pool_approver');
    expect(checkApproval({ approverId: 'bob', requesterName: 'ops', poolApprovers: pool, existing: [vote('bob')] })?.code).toBe('duplicate_approval');
    expect(checkApproval({ approverId: 'bob', requesterName: 'ops', poolApprovers: pool, existing: [vote('alice')] })).toBeNull();
  });

  it('when votes are tallied, then each enrolled approver counts once and the requester and outsiders never', () => {
    const t = tally([vote('alice'), vote('alice'), vote('dave'), vote('carol'), vote('bob', 'reject')], pool, 'carol', 2);
    expect(t).toEqual({ approvals: ['alice'], rejections: ['bob'], satisfied: false });
    expect(tally([vote('alice'), vote('bob')], pool, 'ops', 2).satisfied).toBe(true);
  });
});
