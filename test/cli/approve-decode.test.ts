/**
 * `custody approve` decodes for itself (SPEC sections 5 and 9, "Approving from the CLI"): the approver's
 * client decodes the message's own `unsignedTx`, refuses any field that disagrees with that decoding
 * (naming it), shows every line of the decoding, and asks before signing. The end-to-end test against
 * a forging gateway is test/e2e/approve-hostile.test.ts.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { decodeTransaction } from '../../common/chains/adapters.js';
import { askConfirmation, checkWithdrawalApproval, printable, withdrawalScreen, ApprovalRefusedError } from '../../src/cli/approve.js';
import {
  APPROVE_SELECTOR,
  DEPOSIT_SELECTOR,
  ETH_OTHER,
  btcMessage,
  btcTransfer,
  ethCallMessage,
  ethMessage,
  ethTransfer,
  messageText,
  solMessage,
  solTransferWithMemo,
  withdrawalView,
  type MessageFields,
} from '../helpers/approval-fixtures.js';

const ID = '4f0c2a51-7d3e-4b8a-9c1f-2e6d5a7b8c90';
const OTHER_ID = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';

function check(fields: MessageFields, view = withdrawalView(fields)) {
  return checkWithdrawalApproval(ID, messageText(fields), view);
}

function refusal(fields: MessageFields, view = withdrawalView(fields)): ApprovalRefusedError {
  try {
    check(fields, view);
  } catch (error) {
    if (error instanceof ApprovalRefusedError) return error;
    throw error;
  }
  throw new Error('the message was not refused');
}

describe('checking an approval message against the client\'s own decoding of its transaction', () => {
  it('when an honest message of each family is checked, then it passes and the decoding is what the builder made', () => {
    expect(check(ethMessage(ID)).decoded.amount).toBe(500_000_000_000_000_000n);
    expect(check(btcMessage(ID)).decoded.to).toBe('tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx');
    expect(check(solMessage(ID)).decoded.amount).toBe(1_500_000_000n);
    expect(check(ethCallMessage(ID)).decoded.call?.selector).toBe(DEPOSIT_SELECTOR);
  });

  it('when the message states another amount than its transaction, then it is refused naming "amount"', () => {
    const e = refusal({ ...ethMessage(ID, ethTransfer({ amount: 1000n * 10n ** 18n })), amount: '500000000000000000' });
    expect(e.field).toBe('amount');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: the approval message's "amount" says 500000000000000000 but the transaction has 1000000000000000000000; nothing was posted, report this request to your security officer"`);
  });

  it('when the message states another destination, then it is refused naming "to"', () => {
    const e = refusal({ ...ethMessage(ID), to: ETH_OTHER });
    expect(e.field).toBe('to');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: the approval message's "to" says 0x71C7656EC7ab88b098defB751B7401B5f6d8976F but the transaction has 0x8ba1f109551bD432803012645Ac136ddd64DBA72; nothing was posted, report this request to your security officer"`);
  });

  it('when the message names the digest of another transaction, then it is refused naming "digest"', () => {
    const e = refusal({ ...ethMessage(ID), digest: ethMessage(ID, ethTransfer({ nonce: 8n })).digest });
    expect(e.field).toBe('digest');
    expect(e.message).toMatch(/^refusing to sign: the approval message's "digest" says [0-9a-f]{64} but the transaction has [0-9a-f]{64};/);
  });

  it('when the message states a lower fee cap, then it is refused naming "maxFee"', () => {
    const e = refusal({ ...ethMessage(ID), maxFee: '21000' });
    expect(e.field).toBe('maxFee');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: the approval message's "maxFee" says 21000 but the transaction has 630000000000000; nothing was posted, report this request to your security officer"`);
  });

  it('when the message states a call the transaction does not make, then it is refused naming "call"', () => {
    const e = refusal({ ...ethMessage(ID), call: { contract: ETH_OTHER, selector: APPROVE_SELECTOR } });
    expect(e.field).toBe('call');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: the approval message's "call" says {"contract":"0x71C7656EC7ab88b098defB751B7401B5f6d8976F","selector":"0x095ea7b3"} but the transaction has none; nothing was posted, report this request to your security officer"`);
  });

  it('when the transaction cannot be decoded, then it is refused naming "unsignedTx"', () => {
    const e = refusal({ ...ethMessage(ID), unsignedTx: '0xdeadbeef' });
    expect(e.field).toBe('unsignedTx');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: the approval message's "unsignedTx" cannot be fully decoded as a transaction of eip155:11155111: "unsignedTx" cannot be decoded: Reader(): readBytes: Unexpected end of buffer; nothing was posted, report this request to your security officer"`);
  });

  it('when the message is version 1, then it is refused naming "version"', () => {
    const { unsignedTx: _tx, timelock: _t, ...v1 } = ethMessage(ID);
    const e = refusal({ ...v1, version: 1 });
    expect(e.field).toBe('version');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: approval message version must be 2 (got 1): version 1 messages do not carry the transaction and are no longer accepted; nothing was posted, report this request to your security officer"`);
  });

  it('when the message is for another request, then it is refused naming "requestId"', () => {
    const e = refusal(ethMessage(OTHER_ID));
    expect(e.field).toBe('requestId');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: the approval message's "requestId" says 9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d but you are approving request 4f0c2a51-7d3e-4b8a-9c1f-2e6d5a7b8c90; nothing was posted, report this request to your security officer"`);
  });

  it('when a Bitcoin message states another amount than its PSBT pays, then it is refused naming "amount"', () => {
    const e = refusal({ ...btcMessage(ID), amount: '100000' });
    expect(e.field).toBe('amount');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: the approval message's "amount" says 100000 but the transaction has 1000000; nothing was posted, report this request to your security officer"`);
  });

  it('when a Solana transaction has a second instruction, then it is refused naming "unsignedTx"', () => {
    const e = refusal({ ...solMessage(ID), unsignedTx: solTransferWithMemo() });
    expect(e.field).toBe('unsignedTx');
    expect(e.message).toMatchInlineSnapshot(`"refusing to sign: the approval message's "unsignedTx" cannot be fully decoded as a transaction of solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1: "unsignedTx" has 2 instructions; only one System Program SOL transfer from the pool, signed by the pool alone, is accepted; nothing was posted, report this request to your security officer"`);
  });

  it('when the gateway\'s JSON contradicts its own message, then it is refused too', () => {
    const fields = ethMessage(ID);
    const e = refusal(fields, { ...withdrawalView(fields), to: ETH_OTHER });
    expect(e.field).toBe('to');
    expect(e.message).toMatch(/"to" says 0x8ba1f109551bD432803012645Ac136ddd64DBA72 but the gateway's request has 0x71C7656EC7ab88b098defB751B7401B5f6d8976F/);
  });

  it('when a forged field carries a newline and an escape sequence, then the refusal is still one printable line', () => {
    const e = refusal({ ...ethMessage(ID), to: 'evil\n\u001b[2Kcustody: approved' });
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.message).not.toMatch(/\u001b/);
    expect(e.message).toContain('evil\\u{a}\\u{1b}[2K');
  });
});

describe('what the approver is shown', () => {
  const families: [string, MessageFields][] = [
    ['an ETH transfer', ethMessage(ID)],
    ['a Bitcoin PSBT', btcMessage(ID)],
    ['a SOL transfer', solMessage(ID)],
    ['an Ethereum contract call', ethCallMessage(ID)],
  ];
  for (const [family, fields] of families) {
    it(`when a message about ${family} is shown, then every line of the client's own decoding appears`, () => {
      const screen = withdrawalScreen(check(fields)).join('\n');
      const functions = fields.call === undefined ? [] : [(fields.call as { function?: string }).function ?? ''].filter((f) => f !== '');
      for (const [label, value] of decodeTransaction(fields.chain as string, fields.unsignedTx as string, null, { functions }).details) {
        expect(screen).toMatch(new RegExp(`^  ${label} +${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
      }
      expect(screen).toContain(`withdrawal ${ID}`);
      expect(screen).toMatch(/^ {2}time lock +not time-locked$/m);
    });
  }

  it('when an Ethereum transfer is shown, then the amount and fee cap are in ETH and base units', () => {
    const screen = withdrawalScreen(check(ethMessage(ID))).join('\n');
    expect(screen).toMatch(/^ {2}amount +0\.5 ETH \(500000000000000000 base units\)$/m);
    expect(screen).toMatch(/^ {2}max fee +0\.00063 ETH \(630000000000000 base units\)$/m);
  });

  it('when a contract call is shown, then its contract, selector, function and every named argument appear', () => {
    const checked = check(ethCallMessage(ID));
    const screen = withdrawalScreen(checked).join('\n');
    const { decoded } = checked;
    const call = decoded.call;
    expect(call).not.toBeNull();
    expect(screen).toMatch(new RegExp(`^ {2}contract +${ETH_OTHER}$`, 'm'));
    expect(screen).toMatch(new RegExp(`^ {2}selector +${DEPOSIT_SELECTOR}$`, 'm'));
    expect(screen).toMatch(new RegExp(`^ {2}function +${call?.function === undefined ? 'unknown' : ''}`, 'm'));
    if (call?.function !== undefined) expect(screen).toContain(call.function);
    for (const a of call?.args ?? []) expect(screen).toContain(`${a.name} (${a.type})`);
    // A declared function's argument names are the message's own: the screen says so.
    if (call?.function !== undefined) expect(screen).toContain("(the argument names are the message's own: only the function name and argument types are bound to the selector)");
  });

  it('when the request is time-locked, replaces another and moves to another pool, then each is said, apart, as the gateway\'s word (the transaction cannot confirm it)', () => {
    const screen = withdrawalScreen(check({ ...ethMessage(ID), timelock: '24h', replaces: OTHER_ID, destinationPool: 'client-b' })).join('\n');
    const stated = screen.indexOf('stated by the gateway, not in the transaction (check them against your records):');
    expect(stated).toBeGreaterThan(screen.indexOf('the transaction, decoded here'));
    expect(screen.indexOf('internal transfer to pool client-b')).toBeGreaterThan(stated);
    expect(screen.indexOf('replaces request')).toBeGreaterThan(stated);
    expect(screen).toMatch(/^ {2}time lock +signed 24h after the quorum approves$/m);
    expect(screen).toMatch(new RegExp(`^ {2}replaces +replaces request ${OTHER_ID}$`, 'm'));
    expect(screen).toMatch(/^ {2}internal +internal transfer to pool client-b$/m);
  });

  it('when a shown field holds control characters, then they are written as escapes', () => {
    expect(printable('client-a\n  amount 1 ETH\u001b[1A\u202e')).toBe('client-a\\u{a}  amount 1 ETH\\u{1b}[1A\\u{202e}');
    expect(printable('0.5 ETH to 0x8ba1…')).toBe('0.5 ETH to 0x8ba1…');
  });
});

describe('the Approve? [y/N] question', () => {
  async function answer(typed: string | null): Promise<{ yes: boolean; shown: string }> {
    const input = new PassThrough();
    const output = new PassThrough();
    let shown = '';
    output.on('data', (d: Buffer) => (shown += d.toString()));
    const asked = askConfirmation('Approve? [y/N] ', input, output);
    if (typed === null) input.end();
    else input.write(typed);
    return { yes: await asked, shown };
  }

  it('when the approver types y or yes, then it is a yes', async () => {
    for (const typed of ['y\n', 'yes\n', 'Y\n', ' YES \n']) expect((await answer(typed)).yes).toBe(true);
  });

  it('when the approver types anything else, just Enter, or ends the input, then it is a no', async () => {
    for (const typed of ['n\n', '\n', 'yess\n', 'ok\n', null]) expect((await answer(typed)).yes).toBe(false);
  });

  it('when asked, then the question is written as given', async () => {
    expect((await answer('n\n')).shown).toBe('Approve? [y/N] ');
  });
});
