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
  /** Why the scenario did not run (e.g. a missing dependency); figures are then empty. */
  skipped?: string;
}
