import { describe, expect, it } from 'vitest';
import { NO_FAULTS, decideFault, parseFaultFlags } from '../../hsm-sim/faults.js';

describe('simulator fault flags', () => {
  it('when no flag is given, then there is no fault; flags set each fault', () => {
    expect(parseFaultFlags({})).toEqual(NO_FAULTS);
    expect(parseFaultFlags({ 'fault-latency': '250', 'fault-error-rate': '0.5', 'fault-drop-rate': '.1', 'crash-after-signs': '3' })).toEqual({ latencyMs: 250, errorRate: 0.5, dropRate: 0.1, crashAfterSigns: 3 });
  });

  it('when a value is out of range or not a number, then the flag is named', () => {
    expect(parseFaultFlags({ 'fault-error-rate': '1.5' })).toMatch(/--fault-error-rate must be a probability/);
    expect(parseFaultFlags({ 'fault-drop-rate': 'often' })).toMatch(/--fault-drop-rate/);
    expect(parseFaultFlags({ 'fault-latency': '-5' })).toMatch(/--fault-latency must be a whole number/);
    expect(parseFaultFlags({ 'crash-after-signs': '0' })).toMatch(/at least 1/);
  });

  it('when a request is drawn, then drops come before errors and each follows its probability', () => {
    const plan = { ...NO_FAULTS, errorRate: 0.5, dropRate: 0.25 };
    expect(decideFault(plan, () => 0.1)).toBe('drop');
    expect(decideFault(plan, () => 0.3)).toBe('error');
    expect(decideFault(plan, () => 0.9)).toBe('proceed');
    expect(decideFault(NO_FAULTS, () => 0)).toBe('proceed');
  });
});
