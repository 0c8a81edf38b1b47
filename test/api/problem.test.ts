import { describe, expect, it } from 'vitest';
import { problemOf } from '../../src/api/problem.js';
import { ConflictError, CustodyError, StoreError, ValidationError } from '../../common/errors.js';

describe('problem documents', () => {
  it('when a custody error is mapped, then its kind picks the status and its code and message are kept', () => {
    expect(problemOf(new ValidationError('invalid_amount', '"amount" bad'))).toMatchObject({ status: 400, code: 'invalid_amount', detail: '"amount" bad', type: 'urn:custody:problem:invalid_amount' });
    expect(problemOf(new ConflictError('sign_once', 'nonce taken')).status).toBe(409);
    expect(problemOf(new CustodyError('policy', 'policy_denied', 'no')).status).toBe(412);
  });

  it('when the error is internal or not exposable, then the answer is a generic 500 without its message', () => {
    const p = problemOf(new StoreError('disk', 'disk I/O error at /secret/path'));
    expect(p.status).toBe(500);
    expect(p.detail).not.toContain('/secret/path');
    expect(problemOf(new Error('boom')).detail).not.toContain('boom');
  });

  it('when body-parser reports a malformed or oversized body, then 400 or 413', () => {
    expect(problemOf({ type: 'entity.parse.failed', status: 400 }).status).toBe(400);
    expect(problemOf({ type: 'entity.too.large', status: 413 }).status).toBe(413);
  });
});
