/**
 * Client load for the deployment tests: raw WebSocket and Socket.IO clients that subscribe to one channel,
 * follow `reconnect` frames and transport closes the way real clients do, and count every connection
 * attempt that failed; plus a steady publish stream through the HTTP API. Everything is bounded: a client
 * gives up after `maxAttempts`, the stream stops when told.
 */
import http from "node:http";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";

export interface ClientStats {
  kind: "raw" | "socket.io";
  /** Successful connections (the first one plus every reconnection). */
  connects: number;
  /** Connection attempts that did not end in an open connection (refused, non-101, handshake error). */
  failedAttempts: number;
  /** Closes the client did not get a `reconnect` frame for (raw) / disconnect reasons (Socket.IO). */
  unexpectedCloses: number;
  errors: string[];
  /** Publish sequence numbers received on the channel. */
  received: Set<number>;
  /** When the client was first subscribed: publishes acknowledged after this must reach it. */
  subscribedAt: number;
  subscribed: boolean;
}

abstract class TestClient {
  readonly stats: ClientStats;
  protected stopped = false;
  protected attempts = 0;

  constructor(
    kind: ClientStats["kind"],
    protected readonly maxAttempts: number,
  ) {
    this.stats = {
      kind,
      connects: 0,
      failedAttempts: 0,
      unexpectedCloses: 0,
      errors: [],
      received: new Set(),
      subscribedAt: 0,
      subscribed: false,
    };
  }

  protected onMessage(data: unknown): void {
    const n = (data as { n?: unknown } | null)?.n;
    if (typeof n === "number") this.stats.received.add(n);
  }

  protected onSubscribed(): void {
    this.stats.subscribed = true;
    if (this.stats.subscribedAt === 0) this.stats.subscribedAt = Date.now();
  }

  protected error(text: string): void {
    if (this.stats.errors.length < 5) this.stats.errors.push(text);
  }

  abstract close(): void;
}

/** A raw `/ws` client: on `reconnect` it waits `delayMs`, then connects again and re-subscribes. */
export class RawClient extends TestClient {
  #ws: WebSocket | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    maxAttempts = 20,
  ) {
    super("raw", maxAttempts);
    this.#connect();
  }

  #connect(): void {
    if (this.stopped || this.attempts >= this.maxAttempts) return;
    this.attempts++;
    this.stats.subscribed = false;
    const ws = new WebSocket(this.url);
    this.#ws = ws;
    let opened = false;
    let reconnectAfterMs: number | undefined;
    ws.on("open", () => {
      opened = true;
      this.stats.connects++;
      ws.send(JSON.stringify({ type: "subscribe", channel: this.channel, id: "sub" }));
    });
    ws.on("unexpected-response", (req, res) => {
      this.error(`upgrade answered HTTP ${res.statusCode}`);
      req.destroy();
    });
    ws.on("error", (err) => this.error(err.message));
    ws.on("message", (raw) => {
      const frame = JSON.parse(String(raw)) as {
        type: string;
        id?: string;
        data?: unknown;
        delayMs?: number;
      };
      if (frame.type === "message") this.onMessage(frame.data);
      else if (frame.type === "ack" && frame.id === "sub") this.onSubscribed();
      else if (frame.type === "reconnect") reconnectAfterMs = frame.delayMs ?? 0;
    });
    ws.on("close", () => {
      if (this.stopped) return;
      this.stats.subscribed = false;
      if (!opened) {
        this.stats.failedAttempts++;
        this.#later(250);
      } else if (reconnectAfterMs !== undefined) {
        this.#later(reconnectAfterMs);
      } else {
        this.stats.unexpectedCloses++;
        this.#later(250);
      }
    });
  }

  #later(ms: number): void {
    this.#timer = setTimeout(() => this.#connect(), ms);
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.#timer);
    this.#ws?.terminate();
  }
}

/**
 * A Socket.IO client with the browser defaults (long-polling first, then the WebSocket upgrade) and a
 * cookie jar (`withCredentials`), so HAProxy's persistence cookie is kept the way a browser keeps it.
 */
export class SioClient extends TestClient {
  readonly #socket: Socket;

  constructor(url: string, channel: string, maxAttempts = 20) {
    super("socket.io", maxAttempts);
    this.#socket = io(url, {
      withCredentials: true,
      reconnectionAttempts: maxAttempts,
      reconnectionDelay: 500,
      reconnectionDelayMax: 2000,
      timeout: 5000,
    });
    this.#socket.on("connect", () => {
      this.stats.connects++;
      this.#socket.emit("subscribe", channel, (ack: { ok?: boolean; error?: { code: string } }) => {
        if (ack?.ok) this.onSubscribed();
        else this.error(`subscribe: ${JSON.stringify(ack)}`);
      });
    });
    this.#socket.on("connect_error", (err) => {
      this.stats.failedAttempts++;
      // engine.io puts the HTTP status / transport error of a failed polling request in `description`.
      const { description, context } = err as Error & {
        description?: unknown;
        context?: { responseText?: unknown };
      };
      const body = typeof context?.responseText === "string" ? ` ${context.responseText}` : "";
      this.error(
        `connect_error: ${err.message}${description === undefined ? "" : ` (${describeDetail(description)}${body})`}`,
      );
    });
    this.#socket.on("message", (_channel: string, data: unknown) => this.onMessage(data));
    this.#socket.on("disconnect", (reason) => {
      this.stats.subscribed = false;
      // A drain closes the transport ("transport close"); socket.io-client reconnects by itself.
      if (reason !== "transport close" && reason !== "io client disconnect") {
        this.stats.unexpectedCloses++;
        this.error(`disconnect: ${reason}`);
      }
      if (reason === "io server disconnect" && !this.stopped) this.#socket.connect();
    });
  }

  close(): void {
    this.stopped = true;
    this.#socket.disconnect();
  }
}

function describeDetail(detail: unknown): string {
  if (detail instanceof Error) return detail.message;
  if (typeof detail === "number" || typeof detail === "string") return String(detail);
  return JSON.stringify(detail);
}

/** Publishes `{n}` to `channel` every `everyMs` through `baseUrl`, one fresh connection per request. */
export class PublishStream {
  readonly acked: { n: number; at: number }[] = [];
  readonly failures: string[] = [];
  #n = 0;
  #timer: NodeJS.Timeout | undefined;
  #inflight = new Set<Promise<void>>();

  constructor(
    private readonly baseUrl: string,
    private readonly channel: string,
    everyMs: number,
  ) {
    this.#timer = setInterval(() => this.publishOne(), everyMs);
  }

  /** Publishes the next number; resolves when answered. */
  publishOne(n = ++this.#n): Promise<void> {
    const body = JSON.stringify({ channel: this.channel, data: { n } });
    const p = new Promise<void>((resolve) => {
      const req = http.request(
        `${this.baseUrl}/api/publish`,
        { method: "POST", agent: false, timeout: 5000, headers: { "content-type": "application/json" } },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) this.acked.push({ n, at: Date.now() });
            else this.failures.push(`#${n}: HTTP ${res.statusCode}`);
            resolve();
          });
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (err) => {
        this.failures.push(`#${n}: ${err.message}`);
        resolve();
      });
      req.end(body);
    });
    this.#inflight.add(p);
    void p.then(() => this.#inflight.delete(p));
    return p;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#inflight);
  }
}

/** Messages acknowledged after `client` subscribed that it never received. */
export function missed(client: ClientStats, acked: { n: number; at: number }[]): number {
  return acked.filter((a) => a.at > client.subscribedAt && !client.received.has(a.n)).length;
}
