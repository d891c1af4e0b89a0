/**
 * The bench in smoke mode (tiny sizes) against all three servers, so that it cannot rot: every scenario has a
 * figure for every server, messages arrive, and the reports are written. Figures are not asserted: at these
 * sizes they mean nothing, and timing belongs in `npm run bench`, not in the test suite.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import type { BenchResults, RunResult } from "../../src/bench/results.js";
import { ROOT } from "../helpers/server.js";

const TIMEOUT_MS = 55_000;

function runSmoke(
  outDir: string,
  scenarios = "A,B,C,D,E",
  timeoutMs = TIMEOUT_MS,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/bench/main.ts", "--smoke", "--scenarios", scenarios, "--out", outDir],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-20_000);
    });
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

function runsOf(results: BenchResults, scenario: string, server: string): RunResult[] {
  return results.runs.filter((r) => r.scenario === scenario && r.server === server);
}

test("bench smoke run measures every scenario on every server", { timeout: TIMEOUT_MS + 5000 }, async () => {
  const outDir = mkdtempSync(join(tmpdir(), "switchboard-bench-"));
  try {
    const { code, stderr } = await runSmoke(outDir);
    assert.equal(code, 0, `bench exited with ${code}:\n${stderr}`);
    const results = JSON.parse(readFileSync(join(outDir, "results.json"), "utf8")) as BenchResults;

    for (const scenario of ["A", "B", "C", "D", "E"]) {
      for (const server of ["switchboard", "baseline", "ws"]) {
        const runs = runsOf(results, scenario, server);
        assert.ok(runs.length > 0, `no ${scenario} run for ${server}`);
        for (const run of runs) {
          const where = `${scenario} ${server}/${run.protocol}`;
          assert.ok(run.ok, `${where} failed: ${run.error}`);
          const key = {
            A: "rssPerConnKiB",
            B: "connPerSec",
            C: "refP99Ms",
            D: "refP99Ms",
            E: "publishesPerSec",
          }[scenario];
          assert.ok(Number.isFinite(run.figures[key as string]), `${where}: no ${key}`);
          if (scenario === "A")
            assert.ok(Number.isFinite(run.figures.rssPerConnManyKiB), `${where}: no 10-channel figure`);
          // Every server answers the balancer's health check while the scenario runs.
          if (scenario === "A" || scenario === "C")
            assert.ok(
              (run.figures.healthChecks ?? 0) > 0 && run.figures.healthFailures === 0,
              `${where}: /health`,
            );
          if (scenario === "C" || scenario === "D") {
            assert.ok(run.steps && run.steps.length > 0, `${where}: no steps`);
            for (const step of run.steps) {
              assert.ok(step.received > 0, `${where} at ${step.rate}/s: nothing delivered`);
              assert.ok(
                step.deliveredPct >= 99,
                `${where} at ${step.rate}/s: ${step.deliveredPct}% delivered`,
              );
            }
          }
        }
      }
    }
    // Switchboard is driven over both of its protocols.
    assert.deepEqual(
      runsOf(results, "C", "switchboard")
        .map((r) => r.protocol)
        .sort(),
      ["sio", "ws"],
    );
    assert.ok(results.targets.length >= 10, "targets missing");
    const html = readFileSync(join(outDir, "report.html"), "utf8");
    assert.match(html, /<svg[^>]*>/);
    assert.ok(existsSync(join(outDir, "results.md")));
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

/**
 * Scenario H (opt-in, a blue/green promote through a local redis-server) at smoke size: 50 SDK clients, two
 * promotes of a few seconds each. It checks that the scenario runs and reports, not its figures (zero loss across
 * a promote is asserted by test/deploy/promote.test.ts).
 */
const H_TIMEOUT_MS = 90_000;
test("bench smoke run of scenario H (recovery across a promote)", {
  timeout: H_TIMEOUT_MS + 5000,
}, async () => {
  const outDir = mkdtempSync(join(tmpdir(), "switchboard-bench-h-"));
  try {
    const { code, stderr } = await runSmoke(outDir, "H", H_TIMEOUT_MS);
    assert.equal(code, 0, `bench exited with ${code}:\n${stderr}`);
    const results = JSON.parse(readFileSync(join(outDir, "results.json"), "utf8")) as BenchResults;
    const [run] = runsOf(results, "H", "switchboard");
    assert.ok(run, "no H run");
    const md = readFileSync(join(outDir, "results.md"), "utf8");
    if (run.skipped) {
      // Only without redis-server (scripts/test-setup installs it).
      assert.equal(run.skipped, "not run: redis-server missing");
      assert.match(md, /H recovery across a promote: not run: redis-server missing/);
      return;
    }
    assert.ok(run.ok, `H failed: ${run.error}`);
    for (const key of [
      "sdkClients",
      "sdkPublished",
      "sdkMissedPer1000",
      "refMissedPer1000",
      "sdkBlueExitCode",
    ])
      assert.ok(Number.isFinite(run.figures[key]), `H: no ${key}`);
    assert.ok((run.figures.sdkClients ?? 0) > 0 && (run.figures.refClients ?? 0) > 0, "H: no clients");
    assert.match(md, /H messages missed per 1,000 clients \(goal 0\)/);
    assert.match(readFileSync(join(outDir, "report.html"), "utf8"), /Recovery across a promote \(H\)/);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
});

test("the Redis shard bench runs the publish script and every subscribed host receives every message", async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", "src/bench/redis-shard.ts", "--hosts", "2", "--seconds", "0.3", "--channels", "10"],
    { cwd: ROOT, timeout: 30_000 },
  );
  const row = stdout.split("\n").find((l) => /^\s+2 \|/.test(l));
  assert.ok(row, stdout);
  assert.match(row, /\| 100\.0%$/, "each host received every message");
});
