/**
 * The shape of a bench run's results (written as results.json, read by the table and the HTML report).
 */
import type { ScenarioId, ServerName } from "./bench-config.js";

export type RunProtocol = "ws" | "sio" | "http";

/** One publish-rate step of scenario C or D. */
export interface StepResult {
  /** Messages per second requested. */
  rate: number;
  published: number;
  /** Messages the server refused, or that the publisher could not send in time. */
  unpublished: number;
  expected: number;
  received: number;
  deliveredPct: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Deliveries received per second over the step (first publish to last delivery). */
  deliveriesPerSec: number;
  firstHalfP50Ms: number;
  secondHalfP50Ms: number;
  backlogGrowth: boolean;
  sustained: boolean;
  clientCpuPct: number;
  serverCpuPct: number;
  /** CPU used by other processes on the machine meanwhile (noise), in % of one core. */
  otherCpuPct: number;
}

export interface RunResult {
  scenario: ScenarioId;
  server: ServerName;
  protocol: RunProtocol;
  ok: boolean;
  error?: string;
  /** Named figures; see FIGURES in report-figures.ts for their meaning and units. */
  figures: Record<string, number>;
  steps?: StepResult[];
  /** CPU of all load-client processes during the measurement, in % of one core. */
  clientCpuPct?: number;
  /** CPU of the server's process tree during the measurement, in % of one core. */
  serverCpuPct?: number;
  /** CPU used by other processes on the machine meanwhile (noise), in % of one core. */
  otherCpuPct?: number;
  /** Why the scenario did not run (e.g. redis-server missing for G). */
  skipped?: string;
  wallMs: number;
}

export interface BenchMeta {
  startedAt: string;
  finishedAt: string;
  node: string;
  cpus: number;
  cpuModel: string;
  memTotalMiB: number;
  kernel: string;
  /** 1-minute load average when the run began (other work on the machine makes figures noisy). */
  loadAverageAtStart: number;
  smoke: boolean;
  sources: Record<ServerName, string>;
  config: Record<string, unknown>;
}

export interface TargetResult {
  figure: string;
  target: string;
  measured: string;
  met: boolean | null;
}

export interface BenchResults {
  meta: BenchMeta;
  runs: RunResult[];
  targets: TargetResult[];
}
