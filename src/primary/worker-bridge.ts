import type { BackendOp } from "../backend/backend-service.js";
import type { Bus, BusSink } from "../bus/bus.js";
import { ChannelInterest } from "../bus/interest.js";
import { type DownEvent, IPC_TAG, packPublished, type UpOp } from "../ipc.js";
import type { Supervisor, WorkerInfo } from "./supervisor.js";

/** Bytes handed to Node for a worker and not yet written into its pipe: beyond this, batches wait in the outbox. */
const IN_FLIGHT_BYTES = 1024 * 1024;
/** A held outbox goes out in IPC messages of about this size, not in one. */
const BATCH_BYTES = 1024 * 1024;
/**
 * What the primary keeps for an unresponsive worker (waiting in the outbox + handed to Node and not written):
 * beyond it, events for that worker are dropped and counted, and the worker, out of step, is replaced.
 */
export const UNRESPONSIVE_OUTBOX_BYTES = 16 * 1024 * 1024;

/**
 * The events waiting for one worker. `bytes` and `inFlight` are estimates (the text they carry plus a little per
 * event), close to what the IPC serialization costs.
 */
type Outbox = {
  events: DownEvent[];
  sizes: number[];
  bytes: number;
  inFlight: number;
  /** The worker is unresponsive: nothing is sent, and what is kept is bounded. */
  held: boolean;
  dropped: number;
};

function eventBytes(e: DownEvent): number {
  switch (e[0]) {
    case "msg":
      return 32 + e[1].length + e[3].length;
    case "subok": {
      let n = 64;
      for (const [, dataJson] of e[2].history) n += 16 + dataJson.length;
      return n;
    }
    case "pubok":
      return 32 + 9 * e[2].length + (typeof e[3] === "string" ? e[3].length : 12 * e[3].length);
    case "lost":
      return 40 + e[1].length;
    case "answer":
    case "pevent":
    case "userAction":
      // Rare, small events: a rough size is enough for flow control.
      return 256;
  }
}

/**
 * The primary end of the in-host bus: applies each worker's batched operations to the bus in order and sends
 * each worker one batch of events per event-loop turn, only for channels it has subscribers for.
 *
 * Flow control: a worker that does not read its pipe as fast as events come (the IPC bytes Node could not write
 * yet pass IN_FLIGHT_BYTES) gets later events in one batch once it caught up, in order. While a worker is
 * unresponsive (the supervisor's heartbeat) nothing is sent to it and what waits is bounded by
 * UNRESPONSIVE_OUTBOX_BYTES; beyond it events are dropped and counted (`dropped`), and the worker is marked out of
 * step (`outOfStep`): its subscribers missed messages and its requests lost their replies.
 */
export class WorkerBridge implements BusSink {
  readonly #supervisor: Supervisor;
  readonly #outbox = new Map<number, Outbox>();
  readonly interest: ChannelInterest;
  #flushScheduled = false;
  #bus: Bus | null = null;
  /** Messages sequenced for this host's publishers (repeats of an idempotency key not counted). */
  published = 0;
  /** Resumes answered, by outcome: "recovered" or the history_gap reason. */
  readonly resumes: Record<string, number> = {};
  /** Events dropped for unresponsive workers, by kind (msg, subok, pubok, lost). */
  readonly dropped: Record<string, number> = {};

  readonly #onStats: (info: WorkerInfo) => void;
  /** Where presence reports, closed connections and server API questions go. */
  onBackendOp: (workerId: number, op: BackendOp) => void = () => {};
  /** Told of every message that reaches this host's workers (the admin page's per-channel rates). */
  onChannelMessage: (channel: string) => void = () => {};
  /** This host's interest in a channel changed (after the bus heard of it). */
  onInterest: (channel: string, interested: boolean) => void = () => {};

  /** `onStats` runs when a worker reports its counts (once a second). */
  constructor(supervisor: Supervisor, onStats: (info: WorkerInfo) => void) {
    this.#supervisor = supervisor;
    this.#onStats = onStats;
    this.interest = new ChannelInterest((channel, interested) => {
      this.#bus?.interest(channel, interested);
      this.onInterest(channel, interested);
    });
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
        default:
          this.onBackendOp(id, op);
      }
    }
  }

  /** Forgets a worker that exited. */
  removeWorker(workerId: number): void {
    this.interest.removeWorker(workerId);
    this.#outbox.delete(workerId);
  }

  /** Stops sending to a worker that does not answer (true), or sends what waited for it once it does (false). */
  hold(workerId: number, held: boolean): void {
    const box = this.#box(workerId);
    box.held = held;
    if (!held && box.events.length > 0) this.#schedule();
  }

  /** True once events were dropped for the worker: it missed messages and replies and cannot go on as it is. */
  outOfStep(workerId: number): boolean {
    return (this.#outbox.get(workerId)?.dropped ?? 0) > 0;
  }

  /** What the primary keeps for the worker: waiting in its outbox and handed to Node unwritten, bytes (estimate). */
  pendingBytes(workerId: number): number {
    const box = this.#outbox.get(workerId);
    return box ? box.bytes + box.inFlight : 0;
  }

  /** The same for every worker. */
  totalPendingBytes(): number {
    let n = 0;
    for (const box of this.#outbox.values()) n += box.bytes + box.inFlight;
    return n;
  }

  deliver(channel: string, offset: number, dataJson: string): void {
    const workers = this.interest.workers(channel);
    if (!workers) return;
    this.onChannelMessage(channel);
    const event: DownEvent = ["msg", channel, offset, dataJson, Date.now()];
    for (const workerId of workers) this.#push(workerId, event);
  }

  lost(channel: string, offset: number, epoch: string): void {
    const workers = this.interest.workers(channel);
    if (workers) for (const workerId of workers) this.#push(workerId, ["lost", channel, offset, epoch]);
  }

  /** Sends one event to a worker, in order with its deliveries. */
  sendTo(workerId: number, event: DownEvent): void {
    if (this.#supervisor.info(workerId)) this.#push(workerId, event);
  }

  sendToInterested(channel: string, event: DownEvent): void {
    const workers = this.interest.workers(channel);
    if (workers) for (const workerId of workers) this.#push(workerId, event);
  }

  sendToAll(event: DownEvent): void {
    for (const w of this.#supervisor.workers) this.#push(w.worker.id, event);
  }

  #box(workerId: number): Outbox {
    let box = this.#outbox.get(workerId);
    if (!box) {
      box = { events: [], sizes: [], bytes: 0, inFlight: 0, held: false, dropped: 0 };
      this.#outbox.set(workerId, box);
    }
    return box;
  }

  #push(workerId: number, event: DownEvent): void {
    const box = this.#box(workerId);
    const size = eventBytes(event);
    if (box.held && box.bytes + box.inFlight + size > UNRESPONSIVE_OUTBOX_BYTES) {
      box.dropped += 1;
      this.dropped[event[0]] = (this.dropped[event[0]] ?? 0) + 1;
      return;
    }
    box.events.push(event);
    box.sizes.push(size);
    box.bytes += size;
    if (!box.held) this.#schedule();
  }

  #schedule(): void {
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    for (const [workerId, box] of this.#outbox) {
      const info = this.#supervisor.info(workerId);
      if (!info) {
        this.#outbox.delete(workerId);
        continue;
      }
      while (box.events.length > 0 && !box.held && box.inFlight < IN_FLIGHT_BYTES) this.#sendBatch(info, box);
    }
  }

  /** Sends the outbox, or its first BATCH_BYTES when it grew while the worker did not read. */
  #sendBatch(info: WorkerInfo, box: Outbox): void {
    let events = box.events;
    let bytes = box.bytes;
    if (bytes <= BATCH_BYTES) {
      box.events = [];
      box.sizes = [];
    } else {
      let n = 0;
      bytes = 0;
      while (n < box.sizes.length && (n === 0 || bytes + (box.sizes[n] as number) <= BATCH_BYTES)) {
        bytes += box.sizes[n] as number;
        n += 1;
      }
      events = box.events.slice(0, n);
      box.events = box.events.slice(n);
      box.sizes = box.sizes.slice(n);
    }
    box.bytes -= bytes;
    box.inFlight += bytes;
    // Runs once Node wrote the message into the pipe (at once, or when the worker read enough of it).
    this.#supervisor.send(info, { tag: IPC_TAG, kind: "down", events }, () => {
      box.inFlight -= bytes;
      if (box.events.length > 0 && box.inFlight < IN_FLIGHT_BYTES) this.#schedule();
    });
  }
}
