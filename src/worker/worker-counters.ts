import type { ErrorCode } from "../errors.js";
import { type HistogramSnapshot, LatencyHistogram } from "../metrics/latency-histogram.js";

/** What a worker counts for /metrics and /status; reported to the primary every second. */
export class WorkerCounters {
  delivered = 0;
  slowConsumers = 0;
  drained = 0;
  readonly errors: Partial<Record<ErrorCode, number>> = {};
  /** Backend hook calls by `<hook> <outcome>`. */
  readonly hookCalls: Record<string, number> = {};

  error(code: ErrorCode, n = 1): void {
    this.errors[code] = (this.errors[code] ?? 0) + n;
  }

  /** Hook call latencies, by hook. */
  readonly #hookLatency = new Map<string, LatencyHistogram>();
  /** Accepted by the host → written to the socket. */
  readonly fanout = new LatencyHistogram();

  hookCall(hook: string, outcome: "ok" | "denied" | "timeout" | "failed" | "overloaded", ms?: number): void {
    const key = `${hook} ${outcome}`;
    this.hookCalls[key] = (this.hookCalls[key] ?? 0) + 1;
    if (ms === undefined) return;
    let h = this.#hookLatency.get(hook);
    if (!h) {
      h = new LatencyHistogram();
      this.#hookLatency.set(hook, h);
    }
    h.observe(ms / 1000);
  }

  hookLatency(): Record<string, HistogramSnapshot> {
    const out: Record<string, HistogramSnapshot> = {};
    for (const [hook, h] of this.#hookLatency) out[hook] = h.snapshot();
    return out;
  }
}
