import { createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export type WebhookEvent = { id: string; type: string; time: number } & Record<string, unknown>;

/**
 * A backend's webhook endpoint for tests: records every event it accepted, checks each request's signature, and
 * can answer the next requests with 500 (the server must retry them).
 */
export class WebhookSink {
  readonly events: WebhookEvent[] = [];
  /** Requests whose signature did not verify. */
  badSignatures = 0;
  requests = 0;
  failNext = 0;
  readonly #server: http.Server;
  readonly #secret: string;

  private constructor(secret: string) {
    this.#secret = secret;
    this.#server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.requests += 1;
        const body = Buffer.concat(chunks);
        const expected = `sha256=${createHmac("sha256", this.#secret).update(body).digest("hex")}`;
        if (req.headers["x-switchboard-signature"] !== expected) this.badSignatures += 1;
        if (this.failNext > 0) {
          this.failNext -= 1;
          res.writeHead(500).end();
          return;
        }
        this.events.push(...(JSON.parse(body.toString("utf8")) as { events: WebhookEvent[] }).events);
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
  }

  static async start(secret: string): Promise<WebhookSink> {
    const sink = new WebhookSink(secret);
    await new Promise<void>((resolve) => sink.#server.listen(0, "127.0.0.1", resolve));
    return sink;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/webhook`;
  }

  /** The flags that point a server's webhooks here, signed with this sink's secret. */
  serverArgs(): string[] {
    return ["--webhook", this.url, "--hook-secret", this.#secret];
  }

  /** Events of `type` (about `channel` when given), once each (an event retried after a lost answer has its id). */
  of(type: string, channel?: string): WebhookEvent[] {
    const seen = new Set<string>();
    return this.events.filter((e) => {
      if (e.type !== type || (channel !== undefined && e.channel !== channel) || seen.has(e.id)) return false;
      seen.add(e.id);
      return true;
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
