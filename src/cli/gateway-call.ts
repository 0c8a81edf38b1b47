/**
 * The CLI's calls to a running gateway's HTTP API (`--url`, `--token`): JSON in and out, a problem
 * document's detail as the error message.
 */
import { loadConfig } from '../config.js';
import { CustodyError, ValidationError } from '../../common/errors.js';

interface ProblemBody {
  readonly detail?: string;
  readonly code?: string;
}

export async function callGateway(url: string, token: string, init: { method: string; body?: unknown }): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method,
      headers: { authorization: `Bearer ${token}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  } catch (error) {
    throw new CustodyError('unavailable', 'gateway_unreachable', `cannot reach the gateway at ${url}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown> & ProblemBody;
  if (!res.ok) throw new CustodyError('invalid', body.code ?? 'http_error', `${res.status}: ${body.detail ?? res.statusText}`);
  return body;
}

/** The gateway's base URL and the caller's token, from options or the environment (CUSTODY_TOKEN). */
export function gatewayTarget(opts: { url?: string; token?: string }): { base: string; token: string } {
  const config = loadConfig();
  const token = opts.token ?? process.env.CUSTODY_TOKEN;
  if (!token) throw new ValidationError('missing_token', 'give --token or set CUSTODY_TOKEN to your token');
  return { base: (opts.url ?? `http://${config.host}:${config.port}`).replace(/\/+$/, ''), token };
}
