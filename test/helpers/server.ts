import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ServerProcess } from "../../src/harness/server-process.js";

export { type LogLine, ServerProcess } from "../../src/harness/server-process.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(ROOT, "dist", "cli.js");

/** Fails with one clear line when the server has not been built. */
export function requireBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${relative(ROOT, CLI)} is missing: run npm run build first`);
}

/** Starts the built server on free ports (port 0: the primary binds, workers get connections handed over). */
export function startServer(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  requireBuild();
  return ServerProcess.start({
    command: process.execPath,
    args: [CLI, "start", "--port", "0", "--admin-port", "0", "--host", "127.0.0.1", ...args],
    env: { ...process.env, ...env },
  });
}

/** Runs the CLI to completion (e.g. check-config or an invalid start) and returns its exit code and output. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const [code] = (await once(child, "exit")) as [number];
  return { code, stdout, stderr };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `check` every `everyMs` until it returns a truthy value or the time runs out. An error thrown by
 * `check` fails at once (not retried): a check that may fail while it waits must catch that itself.
 */
export async function until<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = "condition",
  everyMs = 25,
): Promise<Exclude<T, null | undefined | false | 0 | "">> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as Exclude<T, null | undefined | false | 0 | "">;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * Publishes one numbered message over HTTP until it is accepted (30 s at most). The idempotency key makes retries
 * safe: a worker going away mid-request is answered by sending the same key again.
 */
export async function publishOnce(server: ServerProcess, channel: string, n: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${server.url}/api/publish`, {
        method: "POST",
        body: JSON.stringify({ channel, data: n, idempotencyKey: `${channel}-${n}` }),
      });
      const body = await res.text();
      if (res.status === 200) return;
      if (Date.now() > deadline) throw new Error(`publish ${n} answered ${res.status}: ${body}`);
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await sleep(50);
  }
}

/** The admin port's /metrics text. */
export async function metricsText(server: ServerProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
}

/**
 * One sample of a Prometheus metric: the first series of `name` whose labels include `labels`; 0 when the metric
 * exists but has no such series yet (a labelled counter never counted), an error when it does not exist at all.
 */
export async function metric(server: ServerProcess, name: string, labels = ""): Promise<number> {
  const text = await metricsText(server);
  if (!text.includes(`# TYPE ${name} `)) throw new Error(`metric ${name} not found`);
  const line = text
    .split("\n")
    .find((l) => (l.startsWith(`${name}{`) || l.startsWith(`${name} `)) && l.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}
