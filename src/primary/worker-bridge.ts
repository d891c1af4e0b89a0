import type { Bus, BusSink } from "../bus/bus.js";
import { ChannelInterest } from "../bus/interest.js";
import { type DownEvent, IPC_TAG, packPublished, type UpOp } from "../ipc.js";
import type { Supervisor, WorkerInfo } from "./supervisor.js";

/**
 * The primary end of the in-host bus: applies each worker's batched operations to the bus in order and sends
 * each worker one batch of events per event-loop turn, only for channels it has subscribers for.
 */
export class WorkerBridge implements BusSink {
  readonly #supervisor: Supervisor;
  readonly #outbox = new Map<number, DownEvent[]>();
  readonly interest: ChannelInterest;
  #flushScheduled = false;
  #bus: Bus | null = null;
  /** Messages sequenced for this host's publishers (repeats of an idempotency key not counted). */
  published = 0;
  /** Resumes answered, by outcome: "recovered" or the history_gap reason. */
  readonly resumes: Record<string, number> = {};

  readonly #onStats: (info: WorkerInfo) => void;

  /** `onStats` runs when a worker reports its counts (once a second). */
  constructor(supervisor: Supervisor, onStats: (info: WorkerInfo) => void) {
    this.#supervisor = supervisor;
    this.#onStats = onStats;
    this.interest = new ChannelInterest((channel, interested) => this.#bus?.interest(channel, interested));
  }

  /** The bus this bridge feeds (it is built with the bridge as its sink). */
  attach(bus: Bus): void {
    this.#bus = bus;
  }

  apply(info: WorkerInfo, ops: UpOp[]): void {
    const bus = this.#bus;
    if (!bus) return;
    const id = info.worker.id;
    for (const op of ops) {
      switch (op[0]) {
        case "sub": {
          const [, rid, channel, since, epoch] = op;
          this.interest.add(id, channel);
          // The reply is pushed at the join point, behind every delivery the worker was sent before it.
          bus.join(channel, since === null ? null : { since, epoch }, (reply) => {
            if (since !== null) {
              const result = reply.gap?.reason ?? "recovered";
              this.resumes[result] = (this.resumes[result] ?? 0) + 1;
            }
            if (this.#supervisor.info(id)) this.#push(id, ["subok", rid, reply]);
          });
          break;
        }
        case "unsub":
          this.interest.remove(id, op[1]);
          break;
        case "pub": {
          const [, rid, messages] = op;
          const requests = messages.map(([channel, dataJson, idempotencyKey]) => ({
            channel,
            dataJson,
            idempotencyKey,
          }));
          bus.publish(requests, (results) => {
            for (const r of results) if (!r.duplicate) this.published += 1;
            this.#push(id, ["pubok", rid, ...packPublished(results)]);
          });
          break;
        }
        case "stats":
          info.stats = op[1];
          this.#onStats(info);
          break;
      }
    }
  }

  /** Forgets a worker that exited. */
  removeWorker(workerId: number): void {
    this.interest.removeWorker(workerId);
    this.#outbox.delete(workerId);
  }

  deliver(channel: string, offset: number, dataJson: string): void {
    const workers = this.interest.workers(channel);
    if (workers) for (const workerId of workers) this.#push(workerId, ["msg", channel, offset, dataJson]);
  }

  lost(channel: string, offset: number, epoch: string): void {
    const workers = this.interest.workers(channel);
    if (workers) for (const workerId of workers) this.#push(workerId, ["lost", channel, offset, epoch]);
  }

  #push(workerId: number, event: DownEvent): void {
    let box = this.#outbox.get(workerId);
    if (!box) {
      box = [];
      this.#outbox.set(workerId, box);
    }
    box.push(event);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    for (const [workerId, events] of this.#outbox) {
      const info = this.#supervisor.info(workerId);
      if (info) this.#supervisor.send(info, { tag: IPC_TAG, kind: "down", events });
    }
    this.#outbox.clear();
  }
}
