import type { LatencyHistogram } from "../metrics/latency-histogram.js";

/**
 * Fan-out latency: from when the host accepted a message to the end of the write pass that put it on this worker's
 * sockets. Per message, not per socket: one observation per message delivered here, whatever its subscribers.
 */
export class FanoutTimer {
  readonly #histogram: LatencyHistogram;
  #pending: number[] = [];

  constructor(histogram: LatencyHistogram) {
    this.#histogram = histogram;
  }

  /** A message accepted at `acceptedAt` (ms epoch) was queued on this worker's sockets. */
  queued(acceptedAt: number): void {
    this.#pending.push(acceptedAt);
  }

  /** A write pass ended: whatever was queued before it is written. */
  written(): void {
    if (this.#pending.length === 0) return;
    const now = Date.now();
    for (const at of this.#pending) this.#histogram.observe(Math.max(0, now - at) / 1000);
    this.#pending = [];
  }
}
