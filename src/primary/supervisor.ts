import cluster, { type Worker } from "node:cluster";
import { RestartBackoff } from "../backoff.js";
import { type Config, settings } from "../config.js";
import { IPC_TAG, isSwitchboardMessage, type ToPrimary, type ToWorker, type WorkerStats } from "../ipc.js";
import type { Logger } from "../log.js";
import { withNodeFlags } from "../node-flags.js";

/**
 * starting → ready → (retiring: serves its clients, takes no new ones, during a reload) → draining → gone.
 * A ready or retiring worker that leaves the IPC heartbeat unanswered is `unresponsive` (no new connections, its
 * IPC held and bounded) until it answers again (back to what it was) or is killed as hung.
 */
export type WorkerState = "starting" | "ready" | "retiring" | "unresponsive" | "draining";

export type WorkerInfo = {
  worker: Worker;
  slot: number;
  state: WorkerState;
  startedAt: number;
  stats: WorkerStats | null;
  /** When the primary last received anything from the worker (ms since the epoch; stall of the primary excluded). */
  lastHeard: number;
  /** The state an unresponsive worker returns to when it answers again. */
  resumeState: "ready" | "retiring" | null;
  /** Killed for silence: its exit is a hang, not a crash of its own. */
  hung: boolean;
};

/** How often each worker is pinged (and silence checked). */
const PING_INTERVAL_MS = 1000;

export type SupervisorOptions = {
  workers: number;
  /**
   * The workers' configuration: sent to each over IPC as its first message, never in its environment or command
   * line (other processes of the user can read those, and secrets are in it).
   */
  config: Config;
  drainTimeoutMs: number;
  /** Silence after which a worker gets no new connections (state `unresponsive`). */
  unresponsiveMs: number;
  /** Silence after which it is killed (SIGKILL) and replaced through the restart path. */
  hangTimeoutMs: number;
  log: Logger;
  onMessage(info: WorkerInfo, message: ToPrimary): void;
  onExit(info: WorkerInfo): void;
  /** A worker turned unresponsive (false) or answered again (true). */
  onLiveness?(info: WorkerInfo, responsive: boolean): void;
};

/**
 * Forks one worker per slot and keeps the slots filled: restarts with backoff, reports crash loops,
 * replaces workers one at a time on reload and drains them all on shutdown. Knows nothing about messages.
 */
export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #workerEnv: Record<string, string>;
  readonly #workers = new Map<number, WorkerInfo>();
  readonly #backoff = new Map<number, RestartBackoff>();
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  #stopping = false;
  #reloading: Promise<void> | null = null;
  readonly #tickMs: number;
  #pingSeq = 0;
  #lastTick = Date.now();
  restarts = 0;
  /** Workers killed because they stayed silent past the hang timeout. */
  hung = 0;
  /** Times a worker turned unresponsive. */
  unresponsive = 0;
  /** Adapter messages (Socket.IO across workers / hosts) not sent to an unresponsive worker. */
  droppedMessages = 0;

  constructor(o: SupervisorOptions) {
    this.#o = o;
    // Workers get their configuration over IPC: no setting (and no secret) in their environment or arguments.
    this.#workerEnv = Object.fromEntries([
      ...Object.values(settings).map((x) => [x.env, ""]),
      ["SWITCHBOARD_CONFIG", ""],
    ]);
    cluster.setupPrimary({
      args: ["worker"],
      serialization: "advanced",
      execArgv: withNodeFlags(process.execArgv, process.env.NODE_OPTIONS),
    });
    this.#tickMs = Math.min(PING_INTERVAL_MS, Math.round(o.unresponsiveMs / 2));
    setInterval(() => this.#checkLiveness(), this.#tickMs).unref();
  }

  /** Kill after this much silence: never before a worker had the chance to be seen unresponsive first. */
  get #killAfterMs(): number {
    return Math.max(this.#o.hangTimeoutMs, this.#o.unresponsiveMs + 1000);
  }

  /**
   * Pings every worker past its start and judges their silence. Anything a worker sends counts as an answer (its
   * stats, every second, too), so only a worker whose event loop does not run — stopped, or stuck in a loop — goes
   * silent. Time the primary itself could not run (a stall of its own event loop) is not held against a worker:
   * its answers may be waiting unread in the pipe.
   */
  #checkLiveness(): void {
    const now = Date.now();
    const stall = Math.max(0, now - this.#lastTick - 2 * this.#tickMs);
    this.#lastTick = now;
    const ping = { tag: IPC_TAG, kind: "ping", seq: ++this.#pingSeq } as const;
    for (const info of this.#workers.values()) {
      if (info.state === "starting" || info.state === "draining") continue;
      info.lastHeard += stall;
      const silentMs = now - info.lastHeard;
      if (info.state === "unresponsive") {
        if (silentMs < this.#o.unresponsiveMs) this.#answered(info, silentMs);
        else if (silentMs >= this.#killAfterMs) this.#killHung(info, silentMs);
      } else if (silentMs >= this.#o.unresponsiveMs) {
        info.resumeState = info.state;
        info.state = "unresponsive";
        this.unresponsive += 1;
        this.#o.log.warn(
          { worker: info.worker.id, workerPid: info.worker.process.pid, slot: info.slot, silentMs },
          "worker unresponsive: no new connections for it, its IPC held",
        );
        this.#o.onLiveness?.(info, false);
      }
      this.send(info, ping);
    }
  }

  #answered(info: WorkerInfo, silentMs: number): void {
    info.state = info.resumeState ?? "ready";
    info.resumeState = null;
    this.#o.log.warn(
      {
        worker: info.worker.id,
        workerPid: info.worker.process.pid,
        slot: info.slot,
        silentMs,
        state: info.state,
      },
      "worker answers again",
    );
    this.#o.onLiveness?.(info, true);
  }

  #killHung(info: WorkerInfo, silentMs: number): void {
    if (info.hung) return;
    info.hung = true;
    this.hung += 1;
    this.#o.log.error(
      { worker: info.worker.id, workerPid: info.worker.process.pid, slot: info.slot, silentMs },
      "worker hung: killing it (SIGKILL) to replace it",
    );
    info.worker.process.kill("SIGKILL");
  }

  /** Milliseconds since the worker was last heard from. */
  silentMs(info: WorkerInfo): number {
    return Math.max(0, Date.now() - info.lastHeard);
  }

  get workers(): Iterable<WorkerInfo> {
    return this.#workers.values();
  }

  info(id: number): WorkerInfo | undefined {
    return this.#workers.get(id);
  }

  /** How many workers are in each state. */
  countByState(): Record<WorkerState, number> {
    const counts = { starting: 0, ready: 0, retiring: 0, unresponsive: 0, draining: 0 };
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
    const worker = cluster.fork({ ...this.#workerEnv, SWITCHBOARD_WORKER_SLOT: String(slot) });
    const now = Date.now();
    const info: WorkerInfo = {
      worker,
      slot,
      state: "starting",
      startedAt: now,
      stats: null,
      lastHeard: now,
      resumeState: null,
      hung: false,
    };
    this.#workers.set(worker.id, info);
    // An IPC write to a worker that just died surfaces here; the exit handler does the cleanup.
    worker.on("error", (err) => this.#o.log.debug({ err, worker: worker.id }, "worker channel error"));
    return new Promise((resolve) => {
      worker.on("message", (message: unknown) => {
        info.lastHeard = Date.now();
        if (!isSwitchboardMessage<ToPrimary>(message)) return;
        if (message.kind === "hello") {
          this.send(info, { tag: IPC_TAG, kind: "config", config: this.#o.config });
          return;
        }
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
      {
        worker: info.worker.id,
        slot: info.slot,
        code,
        signal,
        restartInMs: delayMs,
        crashLoop,
        hung: info.hung,
      },
      crashLoop
        ? "worker crash loop: restarting with backoff"
        : info.hung
          ? "hung worker killed: restarting"
          : "worker died: restarting",
    );
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (!this.#stopping) void this.#fork(info.slot);
    }, delayMs);
    this.#restartTimers.add(timer);
  }

  send(info: WorkerInfo, message: ToWorker, done?: (err: Error | null) => void): void {
    this.#sendNow(info, message, done);
  }

  /** Sends a control message (readiness, drain, ping): small, sent whatever the worker's state. */
  #sendNow(info: WorkerInfo, message: object, done: (err: Error | null) => void = () => {}): void {
    if (info.worker.isConnected()) info.worker.send(message as never, undefined, { keepOpen: false }, done);
    else done(new Error("the worker's IPC channel is closed"));
  }

  /**
   * Sends a message of the cross-worker traffic (Socket.IO's adapter messages, the bridge's batches); a worker
   * that is gone is skipped, and one that is unresponsive too (counted): it would pile up in the primary.
   * `done` runs once the message left the primary (or failed).
   */
  sendAny(info: WorkerInfo, message: object, done?: (err: Error | null) => void): void {
    if (info.state === "unresponsive") {
      this.droppedMessages += 1;
      return;
    }
    this.#sendNow(info, message, done);
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
        for (const w of old) {
          if (w.state === "retiring") w.state = "ready";
          else if (w.resumeState === "retiring") w.resumeState = "ready";
        }
        return;
      }
      // From the first new worker on, old ones take no new connections, so a client drained off one old
      // worker never lands on another old one and moves only once.
      for (const w of old) {
        if (w.state === "ready") w.state = "retiring";
        else if (w.resumeState === "ready") w.resumeState = "retiring";
      }
      await this.drain(info, "reload");
    }
    this.#o.log.info("rolling reload done");
  }

  /**
   * Replaces one worker the way a reload does (a new one for its slot, then the old one drained): for a worker
   * that answers again but cannot go on as it was (events for it were dropped while it did not answer).
   */
  async replace(info: WorkerInfo, reason: string): Promise<void> {
    if (this.#stopping || !this.#workers.has(info.worker.id)) return;
    if (info.state === "ready") info.state = "retiring";
    this.#o.log.warn({ worker: info.worker.id, slot: info.slot, reason }, "replacing worker");
    await this.#fork(info.slot);
    await this.drain(info, reason);
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
    // A worker still starting has no clients and may not listen for the drain message yet, and an unresponsive
    // one cannot drain: end them now.
    const now = (w: WorkerInfo) => w.state === "starting" || w.state === "unresponsive";
    for (const w of workers) if (now(w)) w.worker.process.kill("SIGKILL");
    await Promise.all(workers.filter((w) => !now(w)).map((w) => this.drain(w, "shutdown")));
  }

  /** Ends every worker now (a second signal). */
  killAll(): void {
    this.#stopping = true;
    for (const w of this.#workers.values()) w.worker.process.kill("SIGKILL");
  }
}
