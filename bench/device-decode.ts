/**
 * What the device's own decoding costs (SPEC section 5): the simulator's SIGN now decodes the
 * transaction itself and compares every approval's message with its decoding before it signs. Measured
 * in process, each step of one SIGN of a typical EIP-1559 ETH transfer with two approvals, against the
 * signature itself (the baseline: what SIGN did besides the quorum check before it decoded anything).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { decodeTransaction } from '../common/chains/adapters.js';
import { buildEthereumTransfer } from '../common/chains/ethereum/transaction.js';
import { canonicalApprovalMessage, parseApprovalMessage, transactionDisagreement } from '../common/approval-message.js';
import { signRecoverable } from '../common/libsecp256k1.js';
import { verifyApproverSignature } from '../common/approver-key.js';

export interface DeviceDecodeCost {
  readonly steps: readonly { readonly step: string; readonly us: number }[];
  /** Decoding and comparing, as a share of the whole SIGN. */
  readonly decodeShare: number;
}

function timeUs(iterations: number, fn: () => void): number {
  for (let i = 0; i < Math.min(100, iterations); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations / 1000;
}

export function deviceDecodeCost(iterations: number): DeviceDecodeCost {
  const poolSecret = secp256k1.utils.randomSecretKey();
  const poolKey = secp256k1.getPublicKey(poolSecret, true);
  const tx = buildEthereumTransfer({
    chainId: 11155111n,
    nonce: 7n,
    gasLimit: 21000n,
    fees: { kind: 'eip1559', maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n },
    intent: { asset: 'ETH', recipient: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', amount: 500_000_000_000_000_000n },
  });
  const decoded = decodeTransaction('eip155:11155111', tx.unsignedTx, poolKey);
  const text = canonicalApprovalMessage({
    kind: 'custody.approval', version: 2, requestId: '6f1c1f4e-3c1a-4c59-9a4e-2b9f4f3e8d10', pool: 'client-a', chain: 'eip155:11155111',
    asset: decoded.asset, amount: decoded.amount.toString(), to: decoded.to, maxFee: decoded.maxFee.toString(), digest: bytesToHex(decoded.digest),
    policyVersion: 1, decision: 'approve', unsignedTx: tx.unsignedTx, timelock: 'none',
  });
  const approvers = [1, 2].map((n) => {
    const secret = new Uint8Array(32).fill(n);
    return { publicKey: ed25519.getPublicKey(secret), signature: ed25519.sign(new TextEncoder().encode(text), secret) };
  });
  // Every step must give its right answer before it is timed.
  if (transactionDisagreement(parseApprovalMessage(text), decoded) !== null) throw new Error('device bench: the message disagrees with its transaction');
  if (!approvers.every((a) => verifyApproverSignature(a.publicKey, text, a.signature))) throw new Error('device bench: an approval does not verify');

  const steps = [
    { step: 'decode the transaction against the pool key (signing hash included)', us: timeUs(iterations, () => void decodeTransaction('eip155:11155111', tx.unsignedTx, poolKey)) },
    {
      step: 'parse each approval message and compare it with the decoding (×2)',
      us: timeUs(iterations, () => {
        for (let i = 0; i < 2; i++) transactionDisagreement(parseApprovalMessage(text), decoded);
      }),
    },
    { step: 'verify each approval signature (×2)', us: timeUs(iterations, () => approvers.forEach((a) => verifyApproverSignature(a.publicKey, text, a.signature))) },
    { step: 'sign the signing hash (RFC 6979, libsecp256k1): the baseline', us: timeUs(iterations, () => void signRecoverable(decoded.payload, poolSecret)) },
  ];
  const total = steps.reduce((s, x) => s + x.us, 0);
  return { steps, decodeShare: ((steps[0]?.us ?? 0) + (steps[1]?.us ?? 0)) / total };
}
