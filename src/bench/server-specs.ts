/**
 * The three servers under test: how to start each (compiled dist/ or TypeScript via tsx) and what it speaks.
 */

import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ServerCommand } from "../harness/server-process.js";
import { NODE_FLAGS } from "../node-flags.js";
import type { ServerName, SourceMode } from "./bench-config.js";
import type { Protocol } from "./load/client-conn.js";

export interface ServerSpec {
  name: ServerName;
  protocols: Protocol[];
  command(workers: number): ServerCommand;
  /** "dist" or "ts": where the code runs from. */
  source: "dist" | "ts";
}

/** The repository root: the nearest ancestor of this module holding package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, "package.json"))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

function newestMtimeMs(dir: string, depth = 0): number {
  let newest = 0;
  if (depth > 6 || !existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtimeMs(p, depth + 1));
    else if (entry.name.endsWith(".ts")) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** "dist" when the compiled file exists and (in auto mode) is at least as new as every file in src/. */
function pickSource(root: string, distFile: string, mode: SourceMode): "dist" | "ts" {
  const dist = join(root, "dist", distFile);
  if (mode === "ts") return "ts";
  if (mode === "dist") return "dist";
  if (!existsSync(dist)) return "ts";
  return statSync(dist).mtimeMs >= newestMtimeMs(join(root, "src")) ? "dist" : "ts";
}

function nodeCommand(
  root: string,
  source: "dist" | "ts",
  rel: string,
  args: string[],
  nodeFlags: string[] = [],
): ServerCommand {
  const file = source === "dist" ? join(root, "dist", `${rel}.js`) : join(root, "src", `${rel}.ts`);
  const loader = source === "ts" ? ["--import", "tsx"] : [];
  return { command: process.execPath, args: [...nodeFlags, ...loader, file, ...args], cwd: root };
}

/**
 * `cpuProfDir`: Switchboard's primary and workers (which inherit its Node flags) write V8 CPU profiles there
 * when they exit, for profiling under the bench's load.
 */
export function serverSpecs(
  mode: SourceMode,
  switchboardArgs: string[],
  cpuProfDir: string | null = null,
): Record<ServerName, ServerSpec> {
  const root = repoRoot();
  const sb = pickSource(root, "cli.js", mode);
  const ws = pickSource(root, "bench/ws-server.js", mode);
  const bl = pickSource(root, "bench/baseline-recipe.js", mode);
  return {
    switchboard: {
      name: "switchboard",
      protocols: ["ws", "sio"],
      source: sb,
      command: (workers) =>
        nodeCommand(
          root,
          sb,
          "cli",
          [
            "start",
            ...["--port", "0", "--admin-port", "0", "--host", "127.0.0.1"],
            ...["--workers", String(workers), "--log-level", "info", "--drain-timeout", "1000"],
            ...switchboardArgs,
          ],
          [...NODE_FLAGS, ...(cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`] : [])],
        ), // as shipped: npm start, the bin, pm2 and systemd all pass these
    },
    baseline: {
      name: "baseline",
      protocols: ["sio"],
      source: bl,
      command: (workers) =>
        nodeCommand(root, bl, "bench/baseline-recipe", ["--port", "0", "--workers", String(workers)]),
    },
    ws: {
      name: "ws",
      protocols: ["ws"],
      source: ws,
      command: () => nodeCommand(root, ws, "bench/ws-server", ["--port", "0"]),
    },
  };
}
