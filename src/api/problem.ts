/**
 * Errors as RFC 9457 problem documents (`application/problem+json`). One table maps each error kind to
 * its HTTP status (ARCHITECTURE "one error model"); internal errors answer a generic 500 and are
 * logged in full.
 */
import type { ErrorRequestHandler, Response } from 'express';
import { CustodyError, type ErrorKind } from '../../common/errors.js';
import type { Logger } from '../logger.js';

export const STATUS_OF_KIND: Readonly<Record<ErrorKind, number>> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  policy: 412,
  unavailable: 503,
  internal: 500,
};

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: string;
  readonly [extension: string]: unknown;
}

export function problem(status: number, code: string, detail: string, extensions: Record<string, unknown> = {}): Problem {
  return { type: `urn:custody:problem:${code}`, title: TITLES[status] ?? 'Error', status, detail, code, ...extensions };
}

export function sendProblem(res: Response, p: Problem): void {
  if (p.status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
  res.status(p.status).type('application/problem+json').send(JSON.stringify(p));
}

/** body-parser errors carry a `type` and a `status`. */
interface ParserError {
  readonly type: string;
  readonly status: number;
}

function isParserError(e: unknown): e is ParserError {
  return typeof e === 'object' && e !== null && typeof (e as ParserError).type === 'string' && typeof (e as ParserError).status === 'number';
}

export function problemOf(error: unknown): Problem {
  if (error instanceof CustodyError) {
    const status = STATUS_OF_KIND[error.kind];
    if (!error.expose || status === 500) return problem(500, 'internal', 'internal error; the gateway log has the details');
    const extensions = error.details ? { ...error.details } : {};
    return problem(status, error.code, error.message, extensions);
  }
  if (isParserError(error)) {
    if (error.type === 'entity.too.large') return problem(413, 'body_too_large', 'the request body is larger than the 64 KiB limit');
    if (error.type === 'entity.parse.failed') return problem(400, 'malformed_json', 'the request body is not valid JSON');
    if (error.type === 'encoding.unsupported' || error.type === 'charset.unsupported') {
      return problem(415, 'unsupported_encoding', 'the request body must be UTF-8 JSON');
    }
    if (error.status >= 400 && error.status < 500) return problem(400, 'bad_request', 'the request body could not be read');
  }
  return problem(500, 'internal', 'internal error; the gateway log has the details');
}

export function problemHandler(log: Logger): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const p = problemOf(error);
    if (p.status >= 500) {
      log.error({ err: error, method: req.method, path: req.path }, 'request failed');
    }
    sendProblem(res, p);
  };
}
