/**
 * Scenario H's publisher: one message per HTTP request at a fixed rate, each with an idempotency key, sent again
 * (to whatever `baseUrl()` names then: the live colour) until it gets a 200. It records the offset and epoch
 * each message was acknowledged with: the list every client's deliveries are checked against.
 */
import http from "node:http";

export interface Acked {
  /** The publish number (the message's `data.n`). */
  n: number;
  offset: number;
  epoch: string;
}

const REQUEST_TIMEOUT_MS = 5000;
const TICK_MS = 5;

export class PromotePublisher {
  /** Acknowledged messages, by publish number (a retried message is recorded once, with its final ack). */
  readonly acked = new Map<number, Acked>();
  /** Messages given up on (not acknowledged within `retryForMs`), with the last reason. */
  readonly failures: string[] = [];
  /** Requests after the first that messages needed (refused, reset, timed out). */
  retries = 0;
  /** Acks that said `duplicate: true` (a retry of a message whose first request had gone through). */
  duplicateAcks = 0;
  readonly #baseUrl: () => string;
  readonly #channel: string;
  readonly #retryForMs: number;
  readonly #key = Math.random().toString(36).slice(2, 10);
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  readonly #inflight = new Set<Promise<void>>();
  #n = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(baseUrl: () => string, channel: string, retryForMs = 20_000) {
    this.#baseUrl = baseUrl;
    this.#channel = channel;
    this.#retryForMs = retryForMs;
  }

  /** Messages sent so far (acknowledged or not). */
  get sent(): number {
    return this.#n;
  }

  /** Starts publishing `rate` messages per second, on schedule (a slow answer does not delay the next one). */
  start(rate: number): void {
    const started = performance.now();
    const first = this.#n;
    this.#timer = setInterval(() => {
      const due = first + Math.floor(((performance.now() - started) * rate) / 1000) + 1;
      while (this.#n < due) void this.publishOne();
    }, TICK_MS);
  }

  /** Stops the stream and waits for every message in flight to be acknowledged or given up. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.all([...this.#inflight]);
  }

  /** Publishes the next number (with `extra` fields in its data); resolves with its ack, or undefined. */
  publishOne(extra: Record<string, unknown> = {}): Promise<Acked | undefined> {
    const n = ++this.#n;
    const body = JSON.stringify({
      channel: this.#channel,
      data: { n, ...extra },
      idempotencyKey: `${this.#key}-${n}`,
    });
    const deadline = performance.now() + this.#retryForMs;
    const p = (async () => {
      for (let attempt = 0; ; attempt++) {
        const outcome = await this.#post(body);
        if (typeof outcome !== "string") {
          if (outcome.duplicate) this.duplicateAcks++;
          const ack = { n, offset: outcome.offset, epoch: outcome.epoch };
          this.acked.set(n, ack);
          return ack;
        }
        if (performance.now() > deadline || this.#closed) {
          this.failures.push(`#${n}: ${outcome}`);
          return undefined;
        }
        this.retries++;
        await new Promise((r) => setTimeout(r, Math.min(500, 25 * 2 ** attempt)));
      }
    })();
    const tracked = p.then(() => undefined);
    this.#inflight.add(tracked);
    void tracked.then(() => this.#inflight.delete(tracked));
    return p;
  }

  /** Stops everything now: no more messages, no more retries (the run is over or failed). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#agent.destroy();
  }

  /** One POST to the live colour: its ack, or why it failed. */
  #post(body: string): Promise<{ offset: number; epoch: string; duplicate: boolean } | string> {
    return new Promise((resolve) => {
      const req = http.request(
        `${this.#baseUrl()}/api/publish`,
        {
          method: "POST",
          agent: this.#agent,
          timeout: REQUEST_TIMEOUT_MS,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            text += c;
          });
          res.on("end", () => {
            if (res.statusCode !== 200) return resolve(`HTTP ${res.statusCode}`);
            try {
              const r = JSON.parse(text) as { offset?: unknown; epoch?: unknown; duplicate?: unknown };
              if (typeof r.offset !== "number" || typeof r.epoch !== "string")
                return resolve(`unexpected reply ${text.slice(0, 100)}`);
              resolve({ offset: r.offset, epoch: r.epoch, duplicate: r.duplicate === true });
            } catch {
              resolve(`unparsable reply ${text.slice(0, 100)}`);
            }
          });
          res.on("error", (err) => resolve(err.message));
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", (err) => resolve(err.message));
      req.end(body);
    });
  }
}
