/**
 * Runs one server under test as a child process: waits for its `"msg":"ready"` JSON log line, reads the
 * port from it, and stops it by pid (SIGTERM to the primary, then SIGKILL to whatever is left of its tree).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { isAlive, treePids } from "./proc-tree.js";

export interface ServerCommand {
  /** Executable (usually process.execPath). */
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

export interface ReadyInfo {
  port: number;
}

const TAIL_LINES = 40;

function parseReady(line: string): ReadyInfo | undefined {
  if (!line.includes('"ready"')) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof obj !== "object" || obj === null) return undefined;
  const rec = obj as Record<string, unknown>;
  if (rec.msg !== "ready" || typeof rec.port !== "number") return undefined;
  return { port: rec.port };
}

export class ServerProcess {
  /** Servers started and not yet stopped, so an interrupted bench can stop them by pid. */
  static readonly live = new Set<ServerProcess>();
  readonly #child: ChildProcess;
  readonly #tail: string[] = [];
  #exited: Promise<number | null>;
  #exitCode: number | null | undefined;
  ready: ReadyInfo | undefined;

  private constructor(cmd: ServerCommand) {
    this.#child = spawn(cmd.command, cmd.args, {
      cwd: cmd.cwd,
      env: cmd.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    ServerProcess.live.add(this);
    this.#exited = new Promise((resolve) => {
      this.#child.once("exit", (code, signal) => {
        ServerProcess.live.delete(this);
        this.#exitCode = code ?? (signal ? -1 : null);
        resolve(this.#exitCode);
      });
      this.#child.once("error", (err) => {
        ServerProcess.live.delete(this);
        this.#remember(`spawn error: ${err.message}`);
        this.#exitCode = -1;
        resolve(-1);
      });
    });
  }

  /** Primary pid of the server (the root of the measured process tree). */
  get pid(): number {
    return this.#child.pid ?? 0;
  }

  get port(): number {
    return this.ready?.port ?? 0;
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  /** Last lines of the server's output, for error messages. */
  tail(): string {
    return this.#tail.join("\n");
  }

  #remember(line: string): void {
    this.#tail.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
  }

  /** Spawns the server and resolves once it logged its ready line; rejects on exit or timeout. */
  static async start(cmd: ServerCommand, timeoutMs: number): Promise<ServerProcess> {
    const server = new ServerProcess(cmd);
    const child = server.#child;
    const stderr = createInterface({ input: child.stderr as NodeJS.ReadableStream });
    stderr.on("line", (line) => server.#remember(line));
    const stdout = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const ready = new Promise<ReadyInfo>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line within ${timeoutMs} ms`)), timeoutMs);
      stdout.on("line", (line) => {
        if (!server.ready) {
          const info = parseReady(line);
          if (info) {
            server.ready = info;
            clearTimeout(timer);
            resolve(info);
          }
        }
        // Keep only errors and the tail; the stream must be drained either way.
        if (!server.ready || line.includes('"level":50') || line.includes('"level":60'))
          server.#remember(line);
      });
      void server.#exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with code ${code} before ready`));
      });
    });
    try {
      await ready;
    } catch (err) {
      await server.stop(2000);
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`${msg}: ${cmd.args.join(" ")}\n${server.tail()}`);
    }
    return server;
  }

  /** SIGTERM to the primary; after `graceMs`, SIGKILL to the primary and every process that was in its tree. */
  async stop(graceMs = 5000): Promise<number | null> {
    const root = this.pid;
    if (!root) return this.#exited;
    const pids = this.running ? treePids(root) : [];
    if (this.running) this.#child.kill("SIGTERM");
    const timeout = sleep(graceMs, "timeout" as const, { ref: false });
    const first = await Promise.race([this.#exited, timeout]);
    // Orphaned workers (if any) are killed by the pid recorded before the primary exited.
    for (const pid of pids) {
      if (pid === root && first !== "timeout") continue;
      if (isAlive(pid)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    return first === "timeout" ? this.#exited : first;
  }
}
