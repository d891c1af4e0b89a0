/**
 * The runner's side of the load client: forks N load-client processes, splits connections and source addresses
 * between them, and aggregates their answers. Each process stays well under the per-process open-file cap.
 */
import { type ChildProcess, fork } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Histogram } from "../histogram.js";
import type { Protocol } from "./client-conn.js";
import type { StepReport } from "./delivery-stats.js";
import {
  type ConnectResult,
  isLoadEvent,
  type LoadCommand,
  type LoadResult,
  type PublishLoadResult,
  type StatusResult,
  type SubscribeResult,
} from "./ipc-messages.js";

/** Connections per client process at most (the open-file cap is 20,000 per process). */
export const MAX_CONNS_PER_PROCESS = 15_000;
/** Connections per source address at most (the ephemeral port range holds ~28,000). */
const MAX_CONNS_PER_ADDRESS = 12_000;
const SOURCE_ADDRESSES = 50;
const COMMAND_TIMEOUT_MS = 180_000;

let addressCursor = 0;

/** Rotates over 127.0.0.1–127.0.0.50 so successive runs spread their source ports. */
function nextAddresses(count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    out.push(`127.0.0.${(addressCursor % SOURCE_ADDRESSES) + 1}`);
    addressCursor++;
  }
  return out;
}

interface Pending {
  resolve: (r: LoadResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class LoadProcess {
  readonly child: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  progressDone = 0;
  progressFailed = 0;
  exited: Promise<void>;

  constructor(child: ChildProcess) {
    this.child = child;
    child.on("message", (msg: unknown) => {
      if (!isLoadEvent(msg)) return;
      if (msg.evt === "progress") {
        this.progressDone = msg.done;
        this.progressFailed = msg.failed;
        return;
      }
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(msg.error));
    });
    child.on("error", () => {
      // A failed fork or IPC send; "exit" follows and fails what is pending.
    });
    this.exited = new Promise((resolve) => {
      child.once("exit", (code) => {
        for (const p of this.#pending.values()) {
          clearTimeout(p.timer);
          p.reject(new Error(`load client exited with code ${code}`));
        }
        this.#pending.clear();
        resolve();
      });
    });
  }

  request<T extends LoadResult>(command: LoadCommand): Promise<T> {
    const id = this.#nextId++;
    if (!this.child.connected) return Promise.reject(new Error("load client is gone"));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`load client: ${command.cmd} timed out`));
      }, COMMAND_TIMEOUT_MS);
      this.#pending.set(id, { resolve: resolve as (r: LoadResult) => void, reject, timer });
      this.child.send({ ...command, id }, (err) => {
        if (!err) return;
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(err);
      });
    });
  }
}

function workerEntry(): { file: string; execArgv: string[] } {
  const self = import.meta.url;
  if (self.endsWith(".ts")) {
    // Running from source: the children need the same TypeScript loader.
    return {
      file: fileURLToPath(new URL("./load-worker.ts", self)),
      execArgv: ["--import", import.meta.resolve("tsx")],
    };
  }
  return { file: fileURLToPath(new URL("./load-worker.js", self)), execArgv: [] };
}

export interface ConnectOptions {
  port: number;
  protocol: Protocol;
  total: number;
  concurrency: number;
}

export class LoadFleet {
  readonly #procs: LoadProcess[];

  private constructor(procs: LoadProcess[]) {
    this.#procs = procs;
  }

  /** Forks `processes` load clients. */
  static start(processes: number): LoadFleet {
    const { file, execArgv } = workerEntry();
    const procs: LoadProcess[] = [];
    for (let i = 0; i < processes; i++) {
      procs.push(
        new LoadProcess(fork(file, [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] })),
      );
    }
    return new LoadFleet(procs);
  }

  /** Number of client processes needed for `connections` connections (at least `min`). */
  static processesFor(connections: number, min: number): number {
    return Math.max(min, Math.ceil(connections / MAX_CONNS_PER_PROCESS));
  }

  /** Handshakes completed / failed so far across all clients (updated ~4 times a second). */
  progress(): { done: number; failed: number } {
    let done = 0;
    let failed = 0;
    for (const p of this.#procs) {
      done += p.progressDone;
      failed += p.progressFailed;
    }
    return { done, failed };
  }

  async connect(o: ConnectOptions): Promise<ConnectResult> {
    const n = this.#procs.length;
    let firstIndex = 0;
    const results = await Promise.all(
      this.#procs.map((p, i) => {
        const count = Math.floor(o.total / n) + (i < o.total % n ? 1 : 0);
        const cmd: LoadCommand = {
          cmd: "connect",
          port: o.port,
          protocol: o.protocol,
          count,
          firstIndex,
          localAddresses: nextAddresses(Math.max(1, Math.ceil(count / MAX_CONNS_PER_ADDRESS))),
          concurrency: Math.max(1, Math.ceil(o.concurrency / n)),
        };
        firstIndex += count;
        return p.request<ConnectResult>(cmd);
      }),
    );
    const timedOut = results
      .map((r) => r.timedOut)
      .filter(Boolean)
      .join("; ");
    return {
      opened: results.reduce((s, r) => s + r.opened, 0),
      failed: results.reduce((s, r) => s + r.failed, 0),
      elapsedMs: Math.max(...results.map((r) => r.elapsedMs)),
      ...(timedOut ? { timedOut } : {}),
    };
  }

  /** Subscribes every open connection to `perConnection` of `channels` channels (see SubscribeCommand). */
  async subscribe(
    channels: number,
    prefix: string,
    timeoutMs: number,
    perConnection = 1,
  ): Promise<SubscribeResult> {
    const results = await Promise.all(
      this.#procs.map((p) =>
        p.request<SubscribeResult>({ cmd: "subscribe", channels, prefix, timeoutMs, perConnection }),
      ),
    );
    return {
      acked: results.reduce((s, r) => s + r.acked, 0),
      errors: results.reduce((s, r) => s + r.errors, 0),
    };
  }

  async received(step: number): Promise<number> {
    const counts = await Promise.all(this.#procs.map((p) => p.request<number>({ cmd: "received", step })));
    return counts.reduce((s, c) => s + c, 0);
  }

  take(step: number): Promise<StepReport[]> {
    return Promise.all(this.#procs.map((p) => p.request<StepReport>({ cmd: "take", step })));
  }

  async status(): Promise<StatusResult> {
    const all = await Promise.all(this.#procs.map((p) => p.request<StatusResult>({ cmd: "status" })));
    const sum = (f: (s: StatusResult) => number) => all.reduce((acc, s) => acc + f(s), 0);
    return {
      droppedByServer: sum((s) => s.droppedByServer),
      late: sum((s) => s.late),
      unparsed: sum((s) => s.unparsed),
      cpuMs: sum((s) => s.cpuMs),
      rssBytes: sum((s) => s.rssBytes),
    };
  }

  /** Runs scenario E's publish load from every client process at once. */
  async publishLoad(port: number, connectionsTotal: number, durationMs: number): Promise<PublishLoadResult> {
    const per = Math.max(1, Math.ceil(connectionsTotal / this.#procs.length));
    const [localAddress = "127.0.0.1"] = nextAddresses(1);
    const all = await Promise.all(
      this.#procs.map((p) =>
        p.request<PublishLoadResult>({
          cmd: "publish-load",
          port,
          connections: per,
          durationMs,
          channel: "bench-e",
          localAddress,
        }),
      ),
    );
    const latency = new Histogram();
    for (const r of all) latency.merge(r.latency);
    return {
      requests: all.reduce((s, r) => s + r.requests, 0),
      errors: all.reduce((s, r) => s + r.errors, 0),
      non200: all.reduce((s, r) => s + r.non200, 0),
      connects: all.reduce((s, r) => s + r.connects, 0),
      elapsedMs: Math.max(...all.map((r) => r.elapsedMs)),
      latency: latency.snapshot(),
    };
  }

  /** Resets every connection, then ends the client processes (SIGKILL by pid if they do not exit). */
  async close(): Promise<void> {
    await Promise.allSettled(this.#procs.map((p) => p.request({ cmd: "close" })));
    for (const p of this.#procs) if (p.child.connected) p.child.disconnect();
    const all = Promise.all(this.#procs.map((p) => p.exited));
    const timeout = sleep(5000, "timeout" as const, { ref: false });
    if ((await Promise.race([all, timeout])) === "timeout") {
      for (const p of this.#procs) if (p.child.exitCode === null) p.child.kill("SIGKILL");
    }
  }
}
