import { isRetryable, SwitchboardClientError } from "./errors.js";

type Timer = ReturnType<typeof setTimeout>;

export type PublishResult = { offset: number; epoch: string | null; duplicate: boolean };

export type PublishOptions = { idempotencyKey?: string };

/** One publish until it is acknowledged, refused or timed out. */
export type PendingPublish = {
  readonly channel: string;
  readonly data: unknown;
  /** The same key on every send: the server answers a repeat with the first offset and delivers nothing twice. */
  readonly idempotencyKey: string;
  /** queued: waits for a connection; sent: awaiting its reply; retrying: waits out a backoff. */
  status: "queued" | "sent" | "retrying";
  retries: number;
  retryTimer: Timer | null;
  deadline: Timer;
  resolve(result: PublishResult): void;
  reject(err: Error): void;
};

/** Sends the publish when connected and returns true; false leaves it queued for the next connection. */
export type SendPublish = (p: PendingPublish) => boolean;

/**
 * Publishes from sending to settling, for both protocols: at-least-once sends with one idempotency key, so the
 * server delivers each exactly once. A send whose connection dropped is sent again on the next connection;
 * a retryable refusal is sent again after a backoff; the whole thing gives up after `timeoutMs`.
 */
export class PublishQueue {
  readonly #pending = new Set<PendingPublish>();
  readonly #t: { send: SendPublish; backoff: (attempt: number) => number; timeoutMs: number };

  /** `backoff` gives the delay before resending a refused publish; `timeoutMs` bounds each publish. */
  constructor(send: SendPublish, backoff: (attempt: number) => number, timeoutMs: number) {
    this.#t = { send, backoff, timeoutMs };
  }

  add(channel: string, data: unknown, idempotencyKey: string): Promise<PublishResult> {
    return new Promise<PublishResult>((resolve, reject) => {
      const p: PendingPublish = {
        channel,
        data,
        idempotencyKey,
        status: "queued",
        retries: 0,
        retryTimer: null,
        deadline: setTimeout(() => {
          this.#settle(p);
          reject(
            new SwitchboardClientError(
              "timeout",
              `publish to ${channel} not acknowledged within ${this.#t.timeoutMs} ms (it may still have been delivered)`,
            ),
          );
        }, this.#t.timeoutMs),
        resolve,
        reject,
      };
      this.#pending.add(p);
      this.#send(p);
    });
  }

  /** The server sequenced it (or had already: `duplicate`). A late second reply finds it settled. */
  acked(p: PendingPublish, reply: { offset?: number; epoch?: string; duplicate?: boolean }): void {
    if (!this.#settle(p)) return;
    p.resolve({
      offset: reply.offset ?? -1,
      epoch: reply.epoch ?? null,
      duplicate: reply.duplicate === true,
    });
  }

  failed(p: PendingPublish, code: string, message: string): void {
    if (!this.#pending.has(p)) return;
    if (!isRetryable(code)) {
      this.#settle(p);
      p.reject(new SwitchboardClientError(code, message));
      return;
    }
    p.status = "retrying";
    p.retryTimer = setTimeout(
      () => {
        p.retryTimer = null;
        this.#send(p);
      },
      this.#t.backoff(p.retries++),
    );
  }

  /** The connection dropped: what was sent on it may or may not have arrived, so it goes again. */
  connectionLost(): void {
    for (const p of this.#pending) if (p.status === "sent") p.status = "queued";
  }

  /** A connection is up: send everything not awaiting a reply, in the order it was published. */
  flush(): void {
    for (const p of this.#pending) {
      if (p.status === "sent") continue;
      if (p.retryTimer) clearTimeout(p.retryTimer);
      p.retryTimer = null;
      this.#send(p);
    }
  }

  rejectAll(err: Error): void {
    for (const p of [...this.#pending]) {
      this.#settle(p);
      p.reject(err);
    }
  }

  #send(p: PendingPublish): void {
    p.status = this.#t.send(p) ? "sent" : "queued";
  }

  /** Removes it and stops its timers; false when it had already settled. */
  #settle(p: PendingPublish): boolean {
    if (!this.#pending.delete(p)) return false;
    clearTimeout(p.deadline);
    if (p.retryTimer) clearTimeout(p.retryTimer);
    p.retryTimer = null;
    return true;
  }
}
