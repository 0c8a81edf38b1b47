/**
 * Bearer-token authentication and role checks (SPEC section 6). Tokens are looked up by their sha256;
 * the principal is attached to the request for the route.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { AuthError } from '../../common/errors.js';
import type { Principal, Role } from '../domain/principal.js';
import type { Store } from '../store/store.js';
import { principalForToken } from '../service/tokens.js';

const principals = new WeakMap<Request, Principal>();

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{8,256})$/;

export function authenticate(store: Store): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    const header = req.headers.authorization;
    if (header === undefined) {
      next(new AuthError('unauthenticated', 'missing_token', 'send "Authorization: Bearer <token>"; tokens are made with custody token create'));
      return;
    }
    const m = BEARER.exec(header);
    if (!m) {
      next(new AuthError('unauthenticated', 'malformed_token', 'the Authorization header must be "Bearer <token>"'));
      return;
    }
    principalForToken(store, m[1] as string).then(
      (principal) => {
        if (!principal) {
          next(new AuthError('unauthenticated', 'unknown_token', 'the token is not valid'));
          return;
        }
        principals.set(req, principal);
        next();
      },
      (error: unknown) => next(error),
    );
  };
}

/** The authenticated principal; throws if it lacks every one of `roles`. */
export function requireRole(req: Request, ...roles: Role[]): Principal {
  const principal = principals.get(req);
  if (!principal) throw new AuthError('unauthenticated', 'missing_token', 'send "Authorization: Bearer <token>"');
  if (!roles.includes(principal.role)) {
    throw new AuthError('forbidden', 'wrong_role', `this route needs the role ${roles.join(' or ')}; the token has "${principal.role}"`);
  }
  return principal;
}
