import { randomBytes } from "node:crypto";
import type { Registry } from "prom-client";
import type { Logger } from "../log.js";
import { collectedCounter, collectedCounterBy, collectedGauge } from "../primary/collected-metrics.js";
import { SIGNATURE_HEADER, signature } from "./signature.js";

export type WebhookType =
  | "channel_occupied"
  | "channel_vacated"
  | "presence_join"
  | "presence_leave"
  | "connection_closed";

export type WebhookEvent = { id: string; type: WebhookType; time: number } & Record<string, unknown>;

export type WebhookOptions = {
  url: string;
  secret: string | null;
  /** Events kept while the backend is slow or down; beyond it the oldest are dropped (and counted). */
  queueMax: number;
  /** How long one batch is retried before it is dropped (and counted). */
  retryMs: number;
  timeoutMs: number;
  instance: string;
  log: Logger;
};

/** Events gathered this long go out together (a burst of joins is one request). */
const BATCH_DELAY_MS = 50;
const BATCH_MAX = 500;
const RETRY_BASE_MS = 250;
const RETRY_MAX_MS = 10_000;

/**
 * Webhook delivery (Pusher's model): events are batched as `{"events":[…]}`, signed, POSTed one batch at a time in
 * order, retried with backoff for --webhook-retry, at least once (each event has an id for dedupe). The queue is
 * bounded: the backend being down costs a fixed amount of memory, and what is dropped is counted.
 */
export class WebhookSender {
  readonly #o: WebhookOptions;
  readonly #queue: WebhookEvent[] = [];
  readonly #idPrefix = randomBytes(6).toString("base64url");
  #nextId = 0;
  #timer: NodeJS.Timeout | null = null;
  #sending = false;
  #closed = false;
  /** The backend failed since the last success: logged once per outage. */
  #failing = false;
  readonly counts = { sent: 0, failed: 0, dropped: 0, expired: 0 };

  constructor(o: WebhookOptions) {
    this.#o = o;
  }

  emit(type: WebhookType, fields: Record<string, unknown>): void {
    if (this.#closed) return;
    this.#nextId += 1;
    this.#queue.push({ id: `${this.#idPrefix}-${this.#nextId}`, type, time: Date.now(), ...fields });
    if (this.#queue.length > this.#o.queueMax) {
      this.#queue.shift();
      this.counts.dropped += 1;
    }
    this.#schedule(BATCH_DELAY_MS);
  }

  get queued(): number {
    return this.#queue.length;
  }

  #schedule(delayMs: number): void {
    if (this.#timer || this.#sending || this.#queue.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#sendBatch();
    }, delayMs);
    this.#timer.unref();
  }

  async #sendBatch(): Promise<void> {
    this.#sending = true;
    const batch = this.#queue.splice(0, BATCH_MAX);
    const body = JSON.stringify({ instance: this.#o.instance, events: batch });
    const started = Date.now();
    let attempt = 0;
    while (!this.#closed) {
      const failure = await this.#post(body);
      if (failure === null) {
        this.counts.sent += batch.length;
        if (this.#failing) this.#o.log.info({ url: this.#o.url }, "webhook backend answering again");
        this.#failing = false;
        break;
      }
      this.counts.failed += 1;
      if (!this.#failing)
        this.#o.log.warn({ url: this.#o.url, reason: failure }, "webhook delivery failing: retrying");
      this.#failing = true;
      attempt += 1;
      const delay = Math.min(RETRY_BASE_MS * 2 ** (attempt - 1), RETRY_MAX_MS) * (0.5 + Math.random() / 2);
      if (Date.now() + delay - started > this.#o.retryMs) {
        this.counts.expired += batch.length;
        this.#o.log.warn(
          { events: batch.length, url: this.#o.url },
          "webhook batch dropped after --webhook-retry",
        );
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
    }
    this.#sending = false;
    this.#schedule(0);
  }

  /** Null when the backend took the batch (2xx), else why not. */
  async #post(body: string): Promise<string | null> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.#o.secret) headers[SIGNATURE_HEADER] = signature(this.#o.secret, body);
    try {
      const res = await fetch(this.#o.url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(this.#o.timeoutMs * 5),
      });
      await res.arrayBuffer().catch(() => {});
      return res.ok ? null : `HTTP ${res.status}`;
    } catch (err) {
      return (err as Error).message;
    }
  }

  /** Resolves once everything queued was sent (or dropped), or after `timeoutMs`: what a drain waits for. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
      if (!this.#sending) void this.#sendBatch();
    }
    while ((this.#queue.length > 0 || this.#sending) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
  }

  registerMetrics(registry: Registry): void {
    collectedCounterBy(
      registry,
      "switchboard_webhook_events_total",
      "Webhook events by outcome: sent (the backend took them), dropped (queue full), expired (retried for --webhook-retry)",
      "outcome",
      () => ({ sent: this.counts.sent, dropped: this.counts.dropped, expired: this.counts.expired }),
    );
    collectedCounter(
      registry,
      "switchboard_webhook_requests_failed_total",
      "Webhook requests the backend did not take (each is retried)",
      () => this.counts.failed,
    );
    collectedGauge(
      registry,
      "switchboard_webhook_queue",
      "Webhook events waiting to be sent",
      () => this.queued,
    );
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
  }
}
