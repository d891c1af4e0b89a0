/**
 * A server under test as a child process, for the tests and the bench alike: spawned, its JSON log lines read
 * (kept for the tests, only the tail for long bench runs), ready once it logs `"msg":"ready"` with its port, and
 * stopped by pid: the signal to the primary, then SIGKILL to whatever is left of its tree.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { killAll, treePids } from "./process-tree.js";

export type LogLine = { msg?: string; level?: number; [k: string]: unknown };

export type ServerCommand = { command: string; args: string[]; cwd?: string; env?: NodeJS.ProcessEnv };

export type StartOptions = {
  /** How long to wait for the ready line. @default 20000 */
  timeoutMs?: number;
  /** Keep every log line in `lines` (tests), or only a tail for error messages (bench). @default true */
  keepLines?: boolean;
};

const TAIL_LINES = 40;

export class ServerProcess {
  /** Servers started and not yet exited, so an interrupted run can stop them by pid. */
  static readonly live = new Set<ServerProcess>();
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  port = 0;
  adminPort = 0;
  readonly #keepLines: boolean;
  readonly #tail: string[] = [];
  readonly #exited: Promise<number | string>;
  #waiters: { test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  private constructor(cmd: ServerCommand, keepLines: boolean) {
    this.#keepLines = keepLines;
    this.child = spawn(cmd.command, cmd.args, {
      cwd: cmd.cwd,
      env: cmd.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    ServerProcess.live.add(this);
    this.#exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        ServerProcess.live.delete(this);
        resolve(code ?? (signal as string));
      });
      this.child.once("error", (err) => {
        ServerProcess.live.delete(this);
        this.#remember(`spawn error: ${err.message}`);
        resolve("spawn error");
      });
    });
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on("line", (text) =>
      this.#line(text),
    );
    createInterface({ input: this.child.stderr as NodeJS.ReadableStream }).on("line", (text) => {
      this.stderr.push(text);
      this.#remember(text);
    });
  }

  /** Spawns the server and resolves once it logged its ready line; stops it and rejects on exit or timeout. */
  static async start(cmd: ServerCommand, o: StartOptions = {}): Promise<ServerProcess> {
    const server = new ServerProcess(cmd, o.keepLines ?? true);
    const timeoutMs = o.timeoutMs ?? 20_000;
    try {
      const line = await Promise.race([
        server.waitForLog((l) => l.msg === "ready" && typeof l.port === "number", timeoutMs),
        server.#exited.then((code) => {
          throw new Error(`exited with ${code} before ready`);
        }),
      ]);
      server.port = line.port as number;
      server.adminPort = (line.adminPort as number | undefined) ?? 0;
      return server;
    } catch (err) {
      await server.stop("SIGKILL", 2000);
      throw new Error(`${(err as Error).message}: ${cmd.args.join(" ")}\n${server.tail()}`);
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** The last lines of its output (errors included), for messages when something failed. */
  tail(): string {
    return this.#tail.join("\n");
  }

  /** Resolves with the first log line (past or future) that passes `test`. */
  waitForLog(test: (l: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    const seen = this.lines.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching log line in ${timeoutMs} ms; output: ${this.tail()}`)),
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

  /** The admin port's /status. */
  async status(): Promise<
    { workers: { id: number; pid: number; state: string; stats: unknown }[] } & Record<string, unknown>
  > {
    const res = await fetch(`http://127.0.0.1:${this.adminPort}/status`);
    return (await res.json()) as never;
  }

  /** One publish through the HTTP API; throws on anything but 200. */
  async publish(channel: string, data: unknown): Promise<{ ok: boolean; offset: number; epoch: string }> {
    const res = await fetch(`${this.url}/api/publish`, {
      method: "POST",
      body: JSON.stringify({ channel, data }),
    });
    if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${await res.text()}`);
    return (await res.json()) as { ok: boolean; offset: number; epoch: string };
  }

  /**
   * Sends `signal` to the primary and resolves with its exit code (or signal name). After `graceMs` it and every
   * process of its tree (workers orphaned by a killed primary too) get SIGKILL.
   */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 20_000): Promise<number | string> {
    if (!this.running) return this.#exited;
    const pids = treePids(this.pid);
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), graceMs);
    });
    const first = await Promise.race([this.#exited, late]);
    clearTimeout(timer);
    killAll(pids.filter((p) => p !== this.pid || first === "late"));
    return first === "late" ? this.#exited : first;
  }

  #line(text: string): void {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: text };
    }
    if (this.#keepLines) this.lines.push(line);
    if (this.#keepLines || (line.level ?? 0) >= 50 || this.port === 0) this.#remember(text);
    if (this.#waiters.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.test(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  #remember(text: string): void {
    this.#tail.push(text.length > 400 ? `${text.slice(0, 400)}…` : text);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
  }
}
