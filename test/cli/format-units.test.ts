import { describe, expect, it } from 'vitest';
import { formatUnits } from '../../src/cli/approve.js';

describe('amounts shown to an approver', () => {
  it('when base units are formatted, then the decimal point is placed exactly with no float rounding', () => {
    expect(formatUnits('500000000000000000', 'ETH')).toBe('0.5 ETH');
    expect(formatUnits('1', 'ETH')).toBe('0.000000000000000001 ETH');
    expect(formatUnits('123456789012345678901234567890', 'ETH')).toBe('123456789012.34567890123456789 ETH');
    expect(formatUnits('100000000', 'BTC')).toBe('1 BTC');
    expect(formatUnits('42', 'erc20:0xabc')).toBe('42 base units of erc20:0xabc');
  });
});
