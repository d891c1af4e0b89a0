/**
 * What a scenario function returns; the runner adds scenario, server, protocol and timing.
 */
import type { RunResult } from "../results.js";

export type ScenarioOutcome = Pick<
  RunResult,
  "figures" | "steps" | "clientCpuPct" | "serverCpuPct" | "otherCpuPct" | "skipped"
>;
