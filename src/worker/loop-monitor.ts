import { type EventLoopUtilization, monitorEventLoopDelay, performance } from "node:perf_hooks";

/** The worker's event loop between two samples: how late timers ran (p99) and how busy it was. */
export class LoopMonitor {
  readonly #delay = monitorEventLoopDelay({ resolution: 10 });
  #elu: EventLoopUtilization = performance.eventLoopUtilization();

  constructor() {
    this.#delay.enable();
  }

  /** Since the last sample: delay p99 in ms (the timer's resolution included) and utilisation 0–1. */
  sample(): { lagP99Ms: number; utilization: number } {
    const lagP99Ms = this.#delay.count > 0 ? this.#delay.percentile(99) / 1e6 : 0;
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
