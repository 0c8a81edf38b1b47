/**
 * A gateway that says whatever the test tells it to (a compromised gateway, SPEC section 5): it serves
 * GET /v1/withdrawals/{id} from what the test published and records every POST, so a test of the real
 * `custody approve` can show that a forged message is refused with nothing posted.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { messageText, withdrawalView, type MessageFields } from './approval-fixtures.js';

export interface Post {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: { signature?: string; decision?: string };
}

export class FakeGateway {
  /** The JSON text served for each withdrawal id. */
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
        const get = /^\/v1\/withdrawals\/([0-9a-f-]{36})$/.exec(req.url ?? '');
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
