/**
 * Publishes timestamped messages at a fixed rate for a fixed time over a few keep-alive connections to
 * POST /api/publish. By default each message is its own request, as an app backend publishing one event per
 * `POST` does; with `batch`, messages due in the same 10 ms tick (or queued while every connection was busy) go
 * out as one batch request, which hands the server coalescing a real backend rarely gives it. Each message's data
 * is `{"t":<epoch ms>,"s":<step>,"h":<half>}`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { epochMs } from "./histogram.js";
import { HttpConn } from "./load/http-conn.js";

const TICK_MS = 10;
const MAX_BATCH = 400;
const DRAIN_TIMEOUT_MS = 15_000;

export interface RatePlan {
  step: number;
  /** Messages per second. */
  rate: number;
  durationMs: number;
  /** Channel of the n-th message of the step. */
  channelOf: (n: number) => string;
}

export interface RateOutcome {
  /** Messages the plan called for (rate × duration, at least one). */
  scheduled: number;
  /** Messages the server accepted (HTTP 200); the rest were refused, lost, or never sent (queue over 2 s). */
  published: number;
}

export class RatePublisher {
  readonly #conns: HttpConn[];
  readonly #maxBatch: number;

  constructor(port: number, connections: number, options: { batch: boolean }) {
    this.#conns = Array.from({ length: connections }, () => new HttpConn(port, "127.0.0.1"));
    this.#maxBatch = options.batch ? MAX_BATCH : 1;
  }

  async run(plan: RatePlan): Promise<RateOutcome> {
    const total = Math.max(1, Math.round((plan.rate * plan.durationMs) / 1000));
    const out: RateOutcome = { scheduled: total, published: 0 };
    const queue: string[] = [];
    const maxQueue = Math.max(MAX_BATCH, plan.rate * 2);
    const half = plan.durationMs / 2;
    const start = performance.now();
    let scheduled = 0;
    let inFlight = 0;

    const dispatch = () => {
      for (const conn of this.#conns) {
        if (queue.length === 0) return;
        if (conn.busy) continue;
        const batch = queue.splice(0, this.#maxBatch);
        const body = batch.length === 1 ? (batch[0] as string) : `{"messages":[${batch.join(",")}]}`;
        inFlight++;
        conn
          .post("/api/publish", body)
          .then(
            (res) => {
              if (res.status === 200) out.published += batch.length;
            },
            () => {
              // lost in a failed request: not published
            },
          )
          .finally(() => {
            inFlight--;
            dispatch();
          });
      }
    };

    while (scheduled < total) {
      const elapsed = performance.now() - start;
      const due = Math.min(total, Math.floor((plan.rate * elapsed) / 1000) + 1);
      const t = epochMs();
      const h = elapsed < half ? 0 : 1;
      for (; scheduled < due; scheduled++) {
        if (queue.length >= maxQueue) continue; // dropped: the server cannot take them as fast as scheduled
        const ch = JSON.stringify(plan.channelOf(scheduled));
        queue.push(`{"channel":${ch},"data":{"t":${t},"s":${plan.step},"h":${h}}}`);
      }
      dispatch();
      if (scheduled < total)
        await sleep(Math.min(TICK_MS, Math.max(1, (scheduled * 1000) / plan.rate - elapsed)));
    }
    const drainUntil = performance.now() + DRAIN_TIMEOUT_MS;
    while ((queue.length > 0 || inFlight > 0) && performance.now() < drainUntil) {
      dispatch();
      await sleep(2);
    }
    return out;
  }

  close(): void {
    for (const c of this.#conns) c.close();
  }
}
