/**
 * GET /health on a fresh connection every 200 ms while a scenario runs, the way HAProxy checks a server: a server
 * whose health check slows under load gets taken out of rotation by its balancer. Latency includes the bench
 * process's own event loop (it also drives the publisher), so it is an upper bound.
 */
import { get } from "node:http";
import { Histogram } from "./histogram.js";

const INTERVAL_MS = 200;
const TIMEOUT_MS = 5000;

export class HealthProbe {
  readonly #latencies = new Histogram();
  #failures = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(port: number) {
    this.#timer = setInterval(() => this.#check(port), INTERVAL_MS);
  }

  #check(port: number): void {
    const started = performance.now();
    const req = get(
      { host: "127.0.0.1", port, path: "/health", agent: false, timeout: TIMEOUT_MS },
      (res) => {
        res.resume();
        res.on("end", () => {
          if (res.statusCode === 200) this.#latencies.record(performance.now() - started);
          else this.#failures++;
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => this.#failures++);
  }

  /** Stops probing; p99 and max of the answered checks (ms), and how many failed or timed out. */
  stop(): { healthP99Ms: number; healthMaxMs: number; healthChecks: number; healthFailures: number } {
    clearInterval(this.#timer);
    const h = this.#latencies;
    return {
      healthP99Ms: h.percentile(0.99),
      healthMaxMs: h.count > 0 ? h.max : Number.NaN,
      healthChecks: h.count,
      healthFailures: this.#failures,
    };
  }
}
