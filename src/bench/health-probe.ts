/**
 * GET /health on a fresh connection every 200 ms while a scenario runs, the way HAProxy checks a server: a server
 * whose health check slows under load gets taken out of rotation by its balancer. The probe runs in a process of
 * its own, so the bench's publisher (busy in the main process) does not delay it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Histogram } from "./histogram.js";

const INTERVAL_MS = 200;
const TIMEOUT_MS = 5000;

/** The probe process: plain JavaScript (no loader needed); prints latencies and failures when stdin closes. */
const PROBE = `
const http = require("node:http");
const [port, interval, timeout] = process.argv.slice(1).map(Number);
const latencies = [];
let failures = 0;
let pending = 0;
let ending = false;
function check() {
  const started = performance.now();
  pending++;
  const settle = (ok) => {
    pending--;
    if (ok) latencies.push(performance.now() - started);
    else failures++;
    if (ending && pending === 0) report();
  };
  const req = http.get({ host: "127.0.0.1", port, path: "/health", agent: false, timeout }, (res) => {
    res.resume();
    res.on("end", () => settle(res.statusCode === 200));
  });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", () => settle(false));
}
const timer = setInterval(check, interval);
function report() {
  process.stdout.write(JSON.stringify({ latencies, failures }) + "\\n", () => process.exit(0));
}
process.stdin.resume();
// A scenario shorter than the first interval still gets one check; one in flight is waited for.
process.stdin.on("end", () => {
  clearInterval(timer);
  ending = true;
  if (latencies.length + failures === 0 && pending === 0) check();
  else if (pending === 0) report();
});
`;

export type HealthFigures = {
  healthP99Ms: number;
  healthMaxMs: number;
  healthChecks: number;
  healthFailures: number;
};

export class HealthProbe {
  readonly #child: ChildProcess;
  readonly #exited: Promise<string>;

  constructor(port: number) {
    this.#child = spawn(
      process.execPath,
      ["-e", PROBE, String(port), String(INTERVAL_MS), String(TIMEOUT_MS)],
      {
        stdio: ["pipe", "pipe", "ignore"],
      },
    );
    let out = "";
    this.#child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    this.#exited = new Promise((resolve) => this.#child.once("exit", () => resolve(out)));
  }

  /** Stops probing; p99 and max of the answered checks (ms), and how many failed or timed out. */
  async stop(): Promise<HealthFigures> {
    this.#child.stdin?.end();
    const out = await this.#exited;
    const h = new Histogram();
    let failures = 0;
    try {
      const parsed = JSON.parse(out) as { latencies: number[]; failures: number };
      for (const ms of parsed.latencies) h.record(ms);
      failures = parsed.failures;
    } catch {
      // the probe died: no figures rather than wrong ones
    }
    return {
      healthP99Ms: h.percentile(0.99),
      healthMaxMs: h.count > 0 ? h.max : Number.NaN,
      healthChecks: h.count,
      healthFailures: failures,
    };
  }
}
