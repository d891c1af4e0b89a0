/**
 * Client load for the deployment tests: raw WebSocket clients built on the SDK (`switchboard/client`) and
 * Socket.IO clients with its wrapper, each subscribed to one channel and resuming it the way a careful app would,
 * counting every connection attempt that failed and every message they received; plus a steady publish stream
 * through the HTTP API. Everything stops when told: clients on close(), the stream on stop().
 */
import http from "node:http";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";
import { SocketIOSubscriptions, Switchboard } from "../../src/client/index.js";

export interface ClientStats {
  kind: "raw" | "socket.io";
  /** Successful connections (the first one plus every reconnection). */
  connects: number;
  /** Connection attempts that did not end in an open connection (refused, non-101, handshake error). */
  failedAttempts: number;
  /** Closes the client did not get a `reconnect` frame for (raw) / disconnect reasons (Socket.IO). */
  unexpectedCloses: number;
  errors: string[];
  /** What the channel delivered, in arrival order: the publish number and the message's offset. */
  received: { n: number; offset: number }[];
  /** The channel's offset when the client first subscribed: every message above it is owed to the client. */
  firstOffset: number | null;
  /** The epoch of that first subscription (it holds across a deploy with Redis). */
  firstEpoch: string | null;
  /** history_gap reports (resumes not served in full, or losses told by the server). */
  gaps: { reason: string; offset: number | null }[];
  /** Subscribes that replayed everything missed since the client's last message. */
  recovered: number;
  subscribed: boolean;
}

export function emptyStats(kind: ClientStats["kind"]): ClientStats {
  return {
    kind,
    connects: 0,
    failedAttempts: 0,
    unexpectedCloses: 0,
    errors: [],
    received: [],
    firstOffset: null,
    firstEpoch: null,
    gaps: [],
    recovered: 0,
    subscribed: false,
  };
}

/** SDK subscription handlers that count into a client's stats (this file's clients and the fleet's). */
export function countingHandlers(stats: ClientStats) {
  return {
    onMessage: (data: unknown, meta: { offset: number }) => {
      const n = (data as { n?: unknown } | null)?.n;
      if (typeof n === "number") stats.received.push({ n, offset: meta.offset });
    },
    onSubscribed: (s: { offset: number | null; epoch: string | null; recovered: boolean }) => {
      stats.subscribed = true;
      if (stats.firstOffset === null) {
        stats.firstOffset = s.offset;
        stats.firstEpoch = s.epoch;
      }
      if (s.recovered) stats.recovered += 1;
    },
    onGap: (gap: { reason: string; offset: number | null }) => {
      stats.gaps.push({ reason: gap.reason, offset: gap.offset });
      stats.subscribed = true;
    },
  };
}

abstract class TestClient {
  readonly stats: ClientStats;
  protected stopped = false;

  protected readonly handlers: ReturnType<typeof countingHandlers>;

  constructor(kind: ClientStats["kind"]) {
    this.stats = emptyStats(kind);
    this.handlers = countingHandlers(this.stats);
  }

  protected error(text: string): void {
    if (this.stats.errors.length < 5) this.stats.errors.push(text);
  }

  abstract close(): void;
}

/**
 * A raw `/ws` client: the SDK's Switchboard (it follows `reconnect` frames, backs off, resumes with since and
 * epoch, drops duplicates). Its WebSocket is `ws`, watched so the test sees each attempt and each close.
 */
export class RawClient extends TestClient {
  readonly #sdk: Switchboard;

  /** `url` may be a function: it is asked before every attempt (a client that moves to another host). */
  constructor(url: string | (() => string), channel: string) {
    super("raw");
    const client = this;
    class WatchedWebSocket extends WebSocket {
      constructor(target: string) {
        super(target);
        let opened = false;
        let told = false;
        this.on("open", () => {
          opened = true;
          client.stats.connects += 1;
        });
        this.on("unexpected-response", (_req, res) =>
          client.error(`upgrade answered HTTP ${res.statusCode}`),
        );
        this.on("error", (err) => client.error(err.message));
        this.on("message", (raw) => {
          if (String(raw).startsWith('{"type":"reconnect"')) told = true;
        });
        this.on("close", () => {
          client.stats.subscribed = false;
          if (client.stopped) return;
          if (!opened) client.stats.failedAttempts += 1;
          else if (!told) client.stats.unexpectedCloses += 1;
        });
      }
    }
    this.#sdk = new Switchboard(url, { WebSocket: WatchedWebSocket, minReconnectDelayMs: 250 });
    this.#sdk.subscribe(channel, this.handlers);
    this.#sdk.connect();
  }

  close(): void {
    this.stopped = true;
    this.#sdk.disconnect();
  }
}

/**
 * A Socket.IO client with the browser defaults (long-polling first, then the WebSocket upgrade) and a
 * cookie jar (`withCredentials`), so HAProxy's persistence cookie is kept the way a browser keeps it; the SDK's
 * wrapper resubscribes it from its position on every reconnect.
 */
export class SioClient extends TestClient {
  readonly #socket: Socket;
  readonly #subscriptions: SocketIOSubscriptions;

  constructor(url: string, channel: string, maxAttempts = 20) {
    super("socket.io");
    this.#socket = io(url, {
      withCredentials: true,
      reconnectionAttempts: maxAttempts,
      reconnectionDelay: 500,
      reconnectionDelayMax: 2000,
      timeout: 5000,
    });
    this.#subscriptions = new SocketIOSubscriptions(this.#socket);
    this.#subscriptions.subscribe(channel, this.handlers);
    this.#socket.on("connect", () => {
      this.stats.connects++;
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
    this.#subscriptions.close();
    this.#socket.disconnect();
  }
}

function describeDetail(detail: unknown): string {
  if (detail instanceof Error) return detail.message;
  if (typeof detail === "number" || typeof detail === "string") return String(detail);
  return JSON.stringify(detail);
}

/**
 * Publishes `{n}` to `channel` every `everyMs`, one fresh connection per request, and records the offset each
 * publish was given. With `retry`, each publish carries an idempotency key and is sent again (to `baseUrl()` again,
 * which may name another host) until it gets a 200: the publisher side of "nothing lost".
 */
export class PublishStream {
  readonly acked: { n: number; offset: number; epoch: string; duplicate: boolean }[] = [];
  readonly failures: string[] = [];
  /** Sends after the first that a retrying stream needed. */
  retries = 0;
  #n = 0;
  #timer: NodeJS.Timeout | undefined;
  #inflight = new Set<Promise<void>>();
  readonly #baseUrl: () => string;
  readonly #key = Math.random().toString(36).slice(2);

  constructor(
    baseUrl: string | (() => string),
    private readonly channel: string,
    everyMs: number,
    private readonly options: { retry?: boolean; retryForMs?: number; apiKey?: string } = {},
  ) {
    this.#baseUrl = typeof baseUrl === "string" ? () => baseUrl : baseUrl;
    this.#timer = setInterval(() => this.publishOne(), everyMs);
  }

  /** Publishes the next number; resolves when answered (a retrying stream: when acknowledged or out of time). */
  publishOne(n = ++this.#n): Promise<void> {
    const message = {
      channel: this.channel,
      data: { n },
      ...(this.options.retry ? { idempotencyKey: `${this.#key}-${n}` } : {}),
    };
    const deadline = Date.now() + (this.options.retryForMs ?? 30_000);
    const p = (async () => {
      for (let attempt = 0; ; attempt++) {
        const outcome = await this.#send(JSON.stringify(message));
        if (typeof outcome !== "string") {
          this.acked.push({ n, ...outcome });
          return;
        }
        if (!this.options.retry || Date.now() > deadline) {
          this.failures.push(`#${n}: ${outcome}`);
          return;
        }
        this.retries += 1;
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      }
    })();
    this.#inflight.add(p);
    void p.then(() => this.#inflight.delete(p));
    return p;
  }

  /** One POST: the reply's offset, or why it failed. */
  #send(body: string): Promise<{ offset: number; epoch: string; duplicate: boolean } | string> {
    return new Promise((resolve) => {
      const req = http.request(
        `${this.#baseUrl()}/api/publish`,
        {
          method: "POST",
          agent: false,
          timeout: 5000,
          headers: {
            "content-type": "application/json",
            // Behind a proxy (HAProxy forwards for the caller) the API needs its key.
            ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            text += c;
          });
          res.on("end", () => {
            if (res.statusCode !== 200) return resolve(`HTTP ${res.statusCode}`);
            const r = JSON.parse(text) as { offset: number; epoch: string; duplicate?: boolean };
            resolve({ offset: r.offset, epoch: r.epoch, duplicate: r.duplicate === true });
          });
          res.on("error", (err) => resolve(err.message));
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (err) => resolve(err.message));
      req.end(body);
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#inflight);
  }
}

/** What a client got wrong against what was published: every message above its first offset, once, in order. */
export function deliveryProblems(
  client: ClientStats,
  acked: readonly { n: number; offset: number; epoch: string }[],
): { missing: number; duplicates: number; outOfOrder: number; foreignEpoch: number } {
  const owed = acked.filter((a) => client.firstOffset !== null && a.offset > client.firstOffset);
  const got = new Set(client.received.map((r) => r.n));
  let outOfOrder = 0;
  for (let i = 1; i < client.received.length; i++) {
    if ((client.received[i]?.offset as number) <= (client.received[i - 1]?.offset as number)) outOfOrder += 1;
  }
  return {
    missing: owed.filter((a) => !got.has(a.n)).length,
    duplicates: client.received.length - got.size,
    outOfOrder,
    foreignEpoch: acked.filter((a) => a.epoch !== client.firstEpoch).length,
  };
}
