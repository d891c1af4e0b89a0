import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(ROOT, "dist", "cli.js");

/** Fails with one clear line when the server has not been built. */
export function requireBuild(): void {
  if (!existsSync(CLI)) throw new Error(`${relative(ROOT, CLI)} is missing: run npm run build first`);
}

export type LogLine = { msg?: string; level?: number; [k: string]: unknown };

/** A real Switchboard process tree started from the built CLI, with its log lines collected. */
export class ServerProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  port = 0;
  adminPort = 0;
  #waiters: { test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(args: string[], env: NodeJS.ProcessEnv = {}) {
    requireBuild();
    this.child = spawn(process.execPath, [CLI, "start", ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on("line", (text) => {
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        line = { msg: text };
      }
      this.lines.push(line);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.test(line)) return true;
        w.resolve(line);
        return false;
      });
    });
    createInterface({ input: this.child.stderr as NodeJS.ReadableStream }).on("line", (t) =>
      this.stderr.push(t),
    );
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** Resolves with the first log line (past or future) that passes `test`. */
  waitForLog(test: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching log line in ${timeoutMs} ms; stderr: ${this.stderr.join("\n")}`)),
        timeoutMs,
      );
      this.#waiters.push({
        test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  async ready(timeoutMs = 20_000): Promise<this> {
    const line = await this.waitForLog((l) => l.msg === "ready", timeoutMs);
    this.port = line.port as number;
    this.adminPort = line.adminPort as number;
    return this;
  }

  async status(): Promise<
    { workers: { id: number; pid: number; state: string; stats: unknown }[] } & Record<string, unknown>
  > {
    const res = await fetch(`http://127.0.0.1:${this.adminPort}/status`);
    return (await res.json()) as never;
  }

  async publish(channel: string, data: unknown): Promise<{ ok: boolean; offset: number; epoch: string }> {
    const res = await fetch(`${this.url}/api/publish`, {
      method: "POST",
      body: JSON.stringify({ channel, data }),
    });
    if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as { ok: boolean; offset: number; epoch: string };
  }

  /** Sends a signal and resolves with the exit code (or signal name). */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000): Promise<number | string> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    const exited = once(this.child, "exit") as Promise<[number | null, string | null]>;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const [code, sig] = await exited;
    clearTimeout(timer);
    return code ?? (sig as string);
  }
}

/** Starts a server on free ports (port 0: the primary binds, workers get connections handed over). */
export async function startServer(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const server = new ServerProcess(["--port", "0", "--admin-port", "0", "--host", "127.0.0.1", ...args], env);
  try {
    return await server.ready();
  } catch (err) {
    await server.stop("SIGKILL");
    throw err;
  }
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
