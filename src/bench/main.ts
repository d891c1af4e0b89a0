/**
 * `npm run bench` / `switchboard bench`: runs every scenario against Switchboard, the Socket.IO recipe and the
 * ws server, prints the table, and writes results.json, results.md and report.html to --out.
 *
 * Run directly: node --import tsx src/bench/main.ts [--smoke] [flags]   (--help lists the flags)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ServerProcess } from "../harness/server-process.js";
import { BenchConfigError, parseBenchArgs, USAGE } from "./bench-config.js";
import { runAll } from "./bench-runner.js";
import { Progress } from "./progress.js";
import { htmlReport } from "./report/html-report.js";
import { fullReport } from "./report/table.js";
import { evaluateTargets } from "./report/targets.js";
import type { BenchResults } from "./results.js";
import { serverSpecs } from "./server-specs.js";

/** Stops every server still running (by pid) when the bench is interrupted, then exits. */
function stopServersOnSignal(): () => void {
  const handler = (signal: NodeJS.Signals) => {
    // Servers by pid; redis-servers are killed by the harness when this process exits.
    void Promise.allSettled([...ServerProcess.live].map((s) => s.stop("SIGTERM", 2000))).then(() =>
      process.exit(signal === "SIGINT" ? 130 : 143),
    );
  };
  process.once("SIGINT", handler);
  process.once("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}

/** Runs the bench; resolves to the exit code (0 all runs succeeded, 1 some run failed, 2 bad flags). */
export async function runBench(argv: string[]): Promise<number> {
  let config: ReturnType<typeof parseBenchArgs>;
  try {
    config = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof BenchConfigError)) throw err;
    const help = err.message === USAGE;
    (help ? process.stdout : process.stderr).write(`${err.message}\n`);
    return help ? 0 : 2;
  }
  const progress = new Progress();
  const specs = serverSpecs(config.source, config.switchboardArgs, config.cpuProfDir);
  const startedAt = new Date().toISOString();
  const load0 = loadavg()[0] ?? 0;
  progress.log(
    `scenarios ${config.scenarios.join(",")} on ${config.servers.join(", ")}; ${config.connections} connections` +
      (config.scenarios.includes("F") ? ` (F: ${config.scaleConnections})` : "") +
      (config.scenarios.includes("H") ? ` (H: ${config.recoveryClients} SDK clients)` : "") +
      `, ${config.durationS} s steps${config.smoke ? " (smoke)" : ""}; load average ${load0.toFixed(2)}`,
  );
  if (load0 > 1) progress.log("other processes keep this machine busy: figures will be noisy");
  const restore = stopServersOnSignal();
  let results: BenchResults;
  try {
    const runs = await runAll(config, specs, progress);
    results = {
      meta: {
        startedAt,
        finishedAt: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? "unknown CPU",
        memTotalMiB: Math.round(totalmem() / 2 ** 20),
        kernel: release(),
        loadAverageAtStart: load0,
        smoke: config.smoke,
        sources: {
          switchboard: specs.switchboard.source,
          baseline: specs.baseline.source,
          ws: specs.ws.source,
        },
        config: { ...config },
      },
      runs,
      targets: evaluateTargets(runs, config.scaleConnections),
    };
  } finally {
    restore();
  }
  const outDir = resolve(config.outDir);
  mkdirSync(outDir, { recursive: true });
  const report = fullReport(results);
  writeFileSync(join(outDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, "results.md"), `${report}\n`);
  writeFileSync(join(outDir, "report.html"), htmlReport(results));
  process.stdout.write(`\n${report}\n\n`);
  progress.log(`wrote ${join(outDir, "results.json")}, results.md and report.html`);
  return results.runs.every((r) => r.ok) ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runBench(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(
        `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
