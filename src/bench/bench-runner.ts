/**
 * Plans and runs every (scenario, server, protocol) combination, one fresh server each, and collects the
 * results. A failing run is recorded with its error and the bench goes on with the next one.
 */
import { type BenchConfig, type ScenarioId, SERVER_LABEL, type ServerName } from "./bench-config.js";
import type { Progress } from "./progress.js";
import type { RunProtocol, RunResult } from "./results.js";
import { runConnectRate } from "./scenarios/connect-rate.js";
import { runCrossHost } from "./scenarios/cross-host.js";
import { runFanout } from "./scenarios/fanout.js";
import { runMemory } from "./scenarios/memory.js";
import type { ScenarioOutcome } from "./scenarios/outcome.js";
import { runPublishApi } from "./scenarios/publish-api.js";
import { runRecovery } from "./scenarios/recovery.js";
import { runScale } from "./scenarios/scale.js";
import type { RunContext } from "./scenarios/session.js";
import type { ServerSpec } from "./server-specs.js";

export interface PlannedRun {
  scenario: ScenarioId;
  server: ServerName;
  protocol: RunProtocol;
}

/** Which combinations run: A–D per protocol a server speaks (Switchboard limited by --protocols), E per server, F, G and H on Switchboard. */
export function planRuns(config: BenchConfig, specs: Record<ServerName, ServerSpec>): PlannedRun[] {
  const runs: PlannedRun[] = [];
  for (const scenario of config.scenarios) {
    for (const server of config.servers) {
      const spec = specs[server];
      if (scenario === "E") {
        runs.push({ scenario, server, protocol: "http" });
      } else if (scenario === "F" || scenario === "G" || scenario === "H") {
        if (server === "switchboard") runs.push({ scenario, server, protocol: "ws" });
      } else {
        const protocols =
          server === "switchboard"
            ? spec.protocols.filter((p) => config.protocols.includes(p))
            : spec.protocols;
        for (const protocol of protocols) runs.push({ scenario, server, protocol });
      }
    }
  }
  return runs;
}

function execute(ctx: RunContext, run: PlannedRun): Promise<ScenarioOutcome> {
  const { config } = ctx;
  const protocol = run.protocol === "sio" ? "sio" : "ws";
  switch (run.scenario) {
    case "A":
      return runMemory(ctx, protocol);
    case "B":
      return runConnectRate(ctx, protocol);
    case "C":
      return runFanout(ctx, protocol, {
        channels: 1,
        prefix: "c",
        rates: config.ratesC,
        refRate: config.refRateC,
        batch: config.batchC,
      });
    case "D":
      return runFanout(ctx, protocol, {
        channels: config.channels,
        prefix: "d",
        rates: config.ratesD,
        refRate: config.refRateD,
        // 1,000 channels at tens of thousands of messages a second: one request each would measure the HTTP API
        // (scenario E), not the fan-out.
        batch: true,
      });
    case "E":
      return runPublishApi(ctx);
    case "F":
      return runScale(ctx);
    case "G":
      return runCrossHost(ctx);
    case "H":
      return runRecovery(ctx);
  }
}

export async function runAll(
  config: BenchConfig,
  specs: Record<ServerName, ServerSpec>,
  progress: Progress,
): Promise<RunResult[]> {
  const plan = planRuns(config, specs);
  const results: RunResult[] = [];
  for (const [i, run] of plan.entries()) {
    const tag = `${run.scenario} ${run.server}/${run.protocol}`;
    progress.log(
      `(${i + 1}/${plan.length}) ${tag}: starting a fresh ${SERVER_LABEL[run.server]} (${specs[run.server].source})`,
    );
    const started = performance.now();
    try {
      const outcome = await execute({ config, progress, spec: specs[run.server], tag }, run);
      results.push({ ...run, ok: true, ...outcome, wallMs: performance.now() - started });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      progress.log(`${tag}: FAILED: ${error.split("\n")[0]}`);
      results.push({ ...run, ok: false, error, figures: {}, wallMs: performance.now() - started });
    }
  }
  return results;
}
