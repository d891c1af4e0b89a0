import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** One hook request as the backend got it. */
export type HookRequest = {
  event: string;
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
  raw: string;
};

/** What a handler answers: a JSON body (200), an HTTP status with a text body, or "hang" (never answers). */
export type HookReply = Record<string, unknown> | { status: number; text: string } | "hang";

export type HookHandler = (body: Record<string, unknown>) => HookReply | Promise<HookReply>;

/**
 * A backend for the hook tests: a real HTTP server on a port of its own that records every hook request and
 * answers each event with the handler the test set (`{}` by default, `{user}` from the query for connect).
 */
export class HookBackend {
  readonly requests: HookRequest[] = [];
  readonly handlers: Record<string, HookHandler> = {};
  #server: Server;
  #hanging = new Set<() => void>();
  port = 0;

  private constructor() {
    this.#server = this.#make();
  }

  /** Starts on `port` (0: any free one). */
  static async start(port = 0): Promise<HookBackend> {
    const b = new HookBackend();
    await b.listen(port);
    return b;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}/${path}`;
  }

  /** The requests of one event (and, optionally, matching `test`). */
  of(event: string, test: (body: Record<string, unknown>) => boolean = () => true): HookRequest[] {
    return this.requests.filter((r) => r.event === event && test(r.body));
  }

  async listen(port: number): Promise<void> {
    this.#server = this.#make();
    this.#server.listen(port, "127.0.0.1");
    await once(this.#server, "listening");
    this.port = (this.#server.address() as AddressInfo).port;
  }

  /** Stops listening and drops every connection: the port is closed, as a backend that went down. */
  async close(): Promise<void> {
    for (const end of this.#hanging) end();
    this.#hanging.clear();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #make(): Server {
    return createServer((req, res) => {
      let raw = "";
      req.on("data", (c: Buffer) => {
        raw += c;
      });
      req.on("end", async () => {
        const body = JSON.parse(raw) as Record<string, unknown>;
        const event = String(body.event);
        this.requests.push({ event, body, headers: req.headers, raw });
        const reply = await (this.handlers[event] ?? defaultAnswer)(body);
        if (reply === "hang") {
          const end = () => res.destroy();
          this.#hanging.add(end);
          res.on("close", () => this.#hanging.delete(end));
          return;
        }
        if ("status" in reply && typeof reply.status === "number" && typeof reply.text === "string") {
          res.writeHead(reply.status, { "content-type": "text/plain" }).end(reply.text);
          return;
        }
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(reply));
      });
    });
  }
}

function defaultAnswer(body: Record<string, unknown>): HookReply {
  if (body.event !== "connect") return {};
  const query = (body.query ?? {}) as Record<string, string>;
  return { user: query.user ?? "anon-user", meta: { via: "test" } };
}
