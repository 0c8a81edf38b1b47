/**
 * The one error model of the gateway (after viem's BaseError and ledgerjs' TransportError).
 *
 * Every error that crosses a module boundary is a CustodyError with a stable string `code`, a short
 * message that names the field or the thing at fault, optional `details`, an optional `cause`, and
 * `expose`: whether its message is safe to show to an API client. The API maps each kind to an HTTP
 * status through one table (src/api/problem.ts); anything else is an internal error, logged in full
 * and answered with a generic 500.
 */

export type ErrorKind =
  | 'invalid' // 400: the input is malformed or fails validation
  | 'unauthenticated' // 401
  | 'forbidden' // 403
  | 'not_found' // 404
  | 'conflict' // 409: state conflict, duplicate, busy
  | 'too_large' // 413
  | 'policy' // 412: denied by policy
  | 'unavailable' // 503: device or store down
  | 'internal'; // 500

export interface CustodyErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  /** Whether the message may be shown to an API client. Defaults to true except for internal errors. */
  expose?: boolean;
}

export class CustodyError extends Error {
  override readonly name: string = 'CustodyError';
  readonly code: string;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown> | undefined;
  readonly expose: boolean;

  constructor(kind: ErrorKind, code: string, message: string, options: CustodyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.code = code;
    this.details = options.details;
    this.expose = options.expose ?? kind !== 'internal';
  }
}

/** Bad input: names the field at fault and what was expected. */
export class ValidationError extends CustodyError {
  override readonly name = 'ValidationError';
  constructor(code: string, message: string, options?: CustodyErrorOptions) {
    super('invalid', code, message, options);
  }
}

export class NotFoundError extends CustodyError {
  override readonly name = 'NotFoundError';
  constructor(code: string, message: string, options?: CustodyErrorOptions) {
    super('not_found', code, message, options);
  }
}

export class ConflictError extends CustodyError {
  override readonly name = 'ConflictError';
  constructor(code: string, message: string, options?: CustodyErrorOptions) {
    super('conflict', code, message, options);
  }
}

export class AuthError extends CustodyError {
  override readonly name = 'AuthError';
  constructor(kind: 'unauthenticated' | 'forbidden', code: string, message: string, options?: CustodyErrorOptions) {
    super(kind, code, message, options);
  }
}

/** A device (HSM simulator, Ledger, PKCS#11) refused or failed an operation. */
export class DeviceError extends CustodyError {
  override readonly name = 'DeviceError';
  constructor(kind: ErrorKind, code: string, message: string, options?: CustodyErrorOptions) {
    super(kind, code, message, options);
  }
}

/** The store could not confirm a step: the step fails (SPEC rule 6, fail closed). */
export class StoreError extends CustodyError {
  override readonly name = 'StoreError';
  constructor(code: string, message: string, options?: CustodyErrorOptions) {
    super('unavailable', code, message, { expose: false, ...options });
  }
}

export function isCustodyError(e: unknown): e is CustodyError {
  return e instanceof CustodyError;
}
