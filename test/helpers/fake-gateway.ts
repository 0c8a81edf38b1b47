/**
 * A gateway that says whatever the test tells it to (a compromised gateway, SPEC section 5): it serves
 * GET /v1/withdrawals/{id} and GET /v1/proposals/{id} from what the test published and records every
 * POST, so a test of the real `custody approve` can show that a forged message is refused with nothing
 * posted. `ApproverCli` is
 * the approver's side: alice's key file and the built CLI pointed at that gateway.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { approverKeyFromSecret, writeApproverKeyFile } from '../../src/cli/approver-key-file.js';
import { messageText, withdrawalView, type MessageFields } from './approval-fixtures.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
/** alice's Ed25519 secret key (RFC 8032 test 1, the demo approver). */
export const ALICE_SECRET = (JSON.parse(readFileSync(join(ROOT, 'examples', 'demo-approver-keys.json'), 'utf8')) as { keys: Record<string, string> }).keys.alice as string;

export interface Post {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: { signature?: string; decision?: string };
}

export class FakeGateway {
  /** The JSON text served for each withdrawal (or proposal) id. */
  readonly views = new Map<string, string>();
  readonly posts: Post[] = [];
  private readonly server: Server;
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (d: Buffer) => (raw += d.toString()));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        const get = /^\/v1\/(?:withdrawals|proposals)\/([0-9a-f-]{36})$/.exec(req.url ?? '');
        const view = get ? this.views.get(get[1] as string) : undefined;
        if (req.method === 'GET' && view !== undefined) return res.end(view);
        if (req.method === 'POST') {
          let body: Post['body'] = {};
          try {
            body = JSON.parse(raw || '{}') as Post['body'];
          } catch {
            // A body that is not JSON is still a POST that must not have happened.
          }
          this.posts.push({ path: req.url ?? '', authorization: req.headers.authorization, body });
          return res.end(JSON.stringify({ state: 'pending_approval' }));
        }
        res.statusCode = 404;
        res.end(JSON.stringify({ code: 'not_found', detail: 'no such withdrawal or route' }));
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((ok) => this.server.listen(0, '127.0.0.1', ok));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /**
   * Publishes a withdrawal whose view repeats `fields` (a compromised gateway is consistent with its
   * own forgery), with `text` as its approval message (by default the canonical text of `fields`).
   */
  publish(fields: MessageFields, text = messageText(fields)): string {
    const id = fields.requestId as string;
    this.views.set(id, JSON.stringify({ ...withdrawalView(fields), approvalMessage: text }));
    return id;
  }

  /** Serves exactly `view` for `id`. */
  serveView(id: string, view: Record<string, unknown>): void {
    this.views.set(id, JSON.stringify(view));
  }

  postsFor(id: string): Post[] {
    return this.posts.filter((p) => p.path.includes(id));
  }

  close(): Promise<void> {
    return new Promise((ok) => this.server.close(() => ok()));
  }
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** alice with her key file in a fresh DATA_DIR, approving through the built `custody approve` against `gateway`. */
export class ApproverCli {
  private dir = '';
  private keyFile = '';

  constructor(
    readonly gateway: FakeGateway,
    readonly token: string,
    private readonly passphrase: string,
  ) {}

  async start(prefix: string): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.keyFile = join(this.dir, 'alice.key');
    writeApproverKeyFile(this.keyFile, approverKeyFromSecret(ALICE_SECRET, 'alice'), this.passphrase);
    await this.gateway.start();
  }

  /** The environment without the caller's token, with the passphrase of the key file. */
  env(): NodeJS.ProcessEnv {
    const { CUSTODY_TOKEN: _t, ...env } = process.env;
    return { ...env, DATA_DIR: this.dir, CUSTODY_KEY_PASSPHRASE: this.passphrase };
  }

  /** node's arguments for `custody approve ID` against the gateway. */
  args(id: string, extra: readonly string[] = []): string[] {
    return [CLI, 'approve', id, '--key', this.keyFile, '--url', this.gateway.url, '--token', this.token, ...extra];
  }

  /** Runs the CLI with no terminal (stdin a closed pipe), as a script or CI does. */
  run(id: string, extra: readonly string[] = ['--yes']): Promise<CliRun> {
    return new Promise((ok) => {
      const child = execFile(process.execPath, this.args(id, extra), { env: this.env(), timeout: 60_000 }, (error, stdout, stderr) => {
        ok({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      });
      child.stdin?.end();
    });
  }

  async close(): Promise<void> {
    await this.gateway.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
