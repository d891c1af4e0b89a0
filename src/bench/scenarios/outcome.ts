/**
 * What a scenario function returns; the runner adds scenario, server, protocol and timing.
 */
import type { StepResult } from "../results.js";

export interface ScenarioOutcome {
  figures: Record<string, number>;
  steps?: StepResult[];
  clientCpuPct?: number;
  serverCpuPct?: number;
  otherCpuPct?: number;
}
