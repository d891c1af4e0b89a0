import cluster, { type Worker } from "node:cluster";
import { RestartBackoff } from "../backoff.js";
import { IPC_TAG, isSwitchboardMessage, type ToPrimary, type ToWorker, type WorkerStats } from "../ipc.js";
import type { Logger } from "../log.js";
import { withNodeFlags } from "../node-flags.js";

/** starting → ready → (retiring: serves its clients, takes no new ones, during a reload) → draining → gone */
export type WorkerState = "starting" | "ready" | "retiring" | "draining";

export type WorkerInfo = {
  worker: Worker;
  slot: number;
  state: WorkerState;
  startedAt: number;
  stats: WorkerStats | null;
};

export type SupervisorOptions = {
  workers: number;
  /** Environment handed to every worker (its configuration travels here). */
  env: Record<string, string>;
  drainTimeoutMs: number;
  log: Logger;
  onMessage(info: WorkerInfo, message: ToPrimary): void;
  onExit(info: WorkerInfo): void;
};

/**
 * Forks one worker per slot and keeps the slots filled: restarts with backoff, reports crash loops,
 * replaces workers one at a time on reload and drains them all on shutdown. Knows nothing about messages.
 */
export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #workers = new Map<number, WorkerInfo>();
  readonly #backoff = new Map<number, RestartBackoff>();
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  #stopping = false;
  #reloading: Promise<void> | null = null;
  restarts = 0;

  constructor(o: SupervisorOptions) {
    this.#o = o;
    cluster.setupPrimary({
      serialization: "advanced",
      execArgv: withNodeFlags(process.execArgv, process.env.NODE_OPTIONS),
    });
  }

  get workers(): Iterable<WorkerInfo> {
    return this.#workers.values();
  }

  info(id: number): WorkerInfo | undefined {
    return this.#workers.get(id);
  }

  /** How many workers are in each state. */
  countByState(): Record<WorkerState, number> {
    const counts = { starting: 0, ready: 0, retiring: 0, draining: 0 };
    for (const w of this.#workers.values()) counts[w.state] += 1;
    return counts;
  }

  /** True when a slot has crashed repeatedly within the crash-loop window. */
  crashLooping(): boolean {
    const now = Date.now();
    for (const b of this.#backoff.values()) if (b.inCrashLoop(now)) return true;
    return false;
  }

  /** Starts every slot; resolves once each has a ready worker. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.#o.workers }, (_, slot) => this.#fork(slot)));
  }

  #fork(slot: number): Promise<WorkerInfo> {
    const worker = cluster.fork({ ...this.#o.env, SWITCHBOARD_WORKER_SLOT: String(slot) });
    const info: WorkerInfo = { worker, slot, state: "starting", startedAt: Date.now(), stats: null };
    this.#workers.set(worker.id, info);
    // An IPC write to a worker that just died surfaces here; the exit handler does the cleanup.
    worker.on("error", (err) => this.#o.log.debug({ err, worker: worker.id }, "worker channel error"));
    return new Promise((resolve) => {
      worker.on("message", (message: unknown) => {
        if (!isSwitchboardMessage<ToPrimary>(message)) return;
        if (message.kind === "ready" && info.state === "starting") {
          info.state = "ready";
          this.#o.log.info({ worker: worker.id, workerPid: worker.process.pid, slot }, "worker ready");
          resolve(info);
        }
        this.#o.onMessage(info, message);
      });
      worker.on("exit", (code, signal) => {
        this.#onExit(info, code, signal);
        resolve(info);
      });
    });
  }

  #onExit(info: WorkerInfo, code: number | null, signal: string | null): void {
    this.#workers.delete(info.worker.id);
    this.#o.onExit(info);
    const expected = info.state === "draining" || this.#stopping;
    if (expected) {
      this.#o.log.info({ worker: info.worker.id, code, signal }, "worker exited after drain");
      return;
    }
    const backoff = this.#backoff.get(info.slot) ?? new RestartBackoff();
    this.#backoff.set(info.slot, backoff);
    const now = Date.now();
    const delayMs = backoff.onCrash(now, info.startedAt);
    this.restarts += 1;
    const crashLoop = backoff.inCrashLoop(now);
    this.#o.log[crashLoop ? "error" : "warn"](
      { worker: info.worker.id, slot: info.slot, code, signal, restartInMs: delayMs, crashLoop },
      crashLoop ? "worker crash loop: restarting with backoff" : "worker died: restarting",
    );
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (!this.#stopping) void this.#fork(info.slot);
    }, delayMs);
    this.#restartTimers.add(timer);
  }

  send(info: WorkerInfo, message: ToWorker): void {
    this.sendAny(info, message);
  }

  /** Sends any IPC message (Socket.IO's adapter messages too); a worker that is gone is skipped. */
  sendAny(info: WorkerInfo, message: object): void {
    if (info.worker.isConnected())
      info.worker.send(message as never, undefined, { keepOpen: false }, () => {});
  }

  /** Replaces every worker, one at a time: the new one is ready before the old one drains. */
  reload(): Promise<void> {
    this.#reloading ??= this.#reloadAll().finally(() => {
      this.#reloading = null;
    });
    return this.#reloading;
  }

  async #reloadAll(): Promise<void> {
    const old = [...this.#workers.values()].filter((w) => w.state !== "draining");
    this.#o.log.info({ workers: old.length }, "rolling reload started");
    for (const info of old) {
      if (this.#stopping) return;
      const fresh = await this.#fork(info.slot);
      if (fresh.state !== "ready") {
        this.#o.log.error({ slot: info.slot }, "rolling reload stopped: the new worker did not become ready");
        for (const w of old) if (w.state === "retiring") w.state = "ready";
        return;
      }
      // From the first new worker on, old ones take no new connections, so a client drained off one old
      // worker never lands on another old one and moves only once.
      for (const w of old) if (w.state === "ready") w.state = "retiring";
      await this.drain(info, "reload");
    }
    this.#o.log.info("rolling reload done");
  }

  /** Drains one worker: no new connections, clients told to reconnect over the window, exit by the deadline. */
  drain(info: WorkerInfo, reason: string): Promise<void> {
    if (!this.#workers.has(info.worker.id)) return Promise.resolve();
    info.state = "draining";
    const deadlineMs = this.#o.drainTimeoutMs;
    const windowMs = Math.round(deadlineMs * 0.6);
    this.send(info, { tag: IPC_TAG, kind: "drain", windowMs, deadlineMs, reason });
    return new Promise((resolve) => {
      const kill = setTimeout(() => {
        this.#o.log.warn({ worker: info.worker.id }, "worker did not exit in time: killing it");
        info.worker.process.kill("SIGKILL");
      }, deadlineMs + 2000);
      info.worker.once("exit", () => {
        clearTimeout(kill);
        resolve();
      });
    });
  }

  /** Stops restarting and drains every worker at once. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#restartTimers) clearTimeout(t);
    const workers = [...this.#workers.values()];
    // A worker still starting has no clients and may not listen for the drain message yet: end it now.
    for (const w of workers) if (w.state === "starting") w.worker.process.kill("SIGKILL");
    await Promise.all(workers.filter((w) => w.state !== "starting").map((w) => this.drain(w, "shutdown")));
  }

  /** Ends every worker now (a second signal). */
  killAll(): void {
    this.#stopping = true;
    for (const w of this.#workers.values()) w.worker.process.kill("SIGKILL");
  }
}
