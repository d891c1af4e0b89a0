import { type EventLoopUtilization, monitorEventLoopDelay, performance } from "node:perf_hooks";

/** How often the delay is sampled (ms): each sample is the interval between two timer runs, so it is taken off. */
const RESOLUTION_MS = 10;

/** The worker's event loop between two samples: how late timers ran (p99) and how busy it was. */
export class LoopMonitor {
  readonly #delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  #elu: EventLoopUtilization = performance.eventLoopUtilization();

  constructor() {
    this.#delay.enable();
  }

  /** Since the last sample: delay p99 in ms and utilisation 0–1. */
  sample(): { lagP99Ms: number; utilization: number } {
    const lagP99Ms =
      this.#delay.count > 0 ? Math.max(0, this.#delay.percentile(99) / 1e6 - RESOLUTION_MS) : 0;
    this.#delay.reset();
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, this.#elu).utilization;
    this.#elu = now;
    return { lagP99Ms, utilization };
  }

  close(): void {
    this.#delay.disable();
  }
}
