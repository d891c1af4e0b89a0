import type { JoinReply, Published, Resume } from "../bus/bus.js";
import { SwitchboardError } from "../errors.js";
import {
  type Delivery,
  type DownEvent,
  IPC_TAG,
  isSwitchboardMessage,
  type OutgoingMessage,
  type PresenceEntry,
  type Question,
  type ToPrimary,
  type ToWorker,
  type UpOp,
  type UserAction,
  unpackPublished,
  type WorkerStats,
} from "../ipc.js";

/** Reply handlers run synchronously, in batch order, so a new subscriber joins exactly between two deliveries. */
type Pending = (reply: JoinReply | Published[] | SwitchboardError | Answered) => void;

/** The value of an `answer` (wrapped, so any JSON value, null too, is told apart from the other replies). */
type Answered = { answered: unknown };

export type PresenceEventListener = (channel: string, kind: "join" | "leave", entry: PresenceEntry) => void;

export type LostNotice = (channel: string, offset: number, epoch: string) => void;

/**
 * The worker end of the in-host bus: batches this turn's operations into one IPC message to the primary and
 * dispatches the primary's ordered event batches. Replies resolve in the same order as deliveries arrive.
 */
export class BusClient {
  readonly #pending = new Map<number, Pending>();
  #nextRid = 1;
  #ops: UpOp[] = [];
  #onDelivery: (d: Delivery) => void = () => {};
  #onLost: LostNotice = () => {};
  #onControl: (m: ToWorker) => void = () => {};
  #onPresence: PresenceEventListener = () => {};
  #onUserAction: (action: UserAction) => void = () => {};

  constructor() {
    process.on("message", (message: unknown) => {
      if (!isSwitchboardMessage<ToWorker>(message)) return;
      if (message.kind === "down") this.#dispatch(message.events);
      else this.#onControl(message);
    });
  }

  onDelivery(fn: (d: Delivery) => void): void {
    this.#onDelivery = fn;
  }

  /** Messages of a channel may not have reached this host: its subscribers' position moved. */
  onLost(fn: LostNotice): void {
    this.#onLost = fn;
  }

  onControl(fn: (m: ToWorker) => void): void {
    this.#onControl = fn;
  }

  /** A user joined or left a joinLeave channel somewhere: tell its subscribers here. */
  onPresence(fn: PresenceEventListener): void {
    this.#onPresence = fn;
  }

  /** The server API acts on a user's connections (every worker of every host gets it). */
  onUserAction(fn: (action: UserAction) => void): void {
    this.#onUserAction = fn;
  }

  /** Asks the primary (server API); rejects with the SwitchboardError it answered. */
  ask(question: Question): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#request(
        (rid) => ["ask", rid, question],
        (reply) =>
          reply instanceof SwitchboardError ? reject(reply) : resolve((reply as Answered).answered),
      );
    });
  }

  /** Presence reports and closed connections: no answer. */
  report(op: Extract<UpOp, { 0: "pjoin" | "pleave" | "closed" }>): void {
    this.#queue(op);
  }

  /** `done` runs synchronously when the primary's reply is dispatched, before any later delivery. */
  subscribe(
    channel: string,
    resume: Resume | null,
    done: (reply: JoinReply | SwitchboardError) => void,
  ): void {
    this.#request(
      (rid) => ["sub", rid, channel, resume?.since ?? null, resume?.epoch ?? null],
      done as Pending,
    );
  }

  unsubscribe(channel: string): void {
    this.#queue(["unsub", channel]);
  }

  /** Publishes in order; resolves with one result per message. */
  publish(messages: OutgoingMessage[]): Promise<Published[]> {
    return new Promise((resolve, reject) => {
      this.#request(
        (rid) => ["pub", rid, messages],
        (reply) => (reply instanceof SwitchboardError ? reject(reply) : resolve(reply as Published[])),
      );
    });
  }

  reportStats(stats: WorkerStats): void {
    this.#queue(["stats", stats]);
  }

  send(message: ToPrimary): void {
    if (process.connected) process.send?.(message);
  }

  #request(op: (rid: number) => UpOp, done: Pending): void {
    const rid = this.#nextRid++;
    this.#pending.set(rid, done);
    this.#queue(op(rid));
  }

  #queue(op: UpOp): void {
    if (this.#ops.length === 0) setImmediate(() => this.#flush());
    this.#ops.push(op);
  }

  #flush(): void {
    const ops = this.#ops;
    this.#ops = [];
    if (!process.connected) {
      for (const done of this.#pending.values()) done(new SwitchboardError("unavailable", "primary is gone"));
      this.#pending.clear();
      return;
    }
    process.send?.({ tag: IPC_TAG, kind: "up", ops } satisfies ToPrimary);
  }

  #dispatch(events: DownEvent[]): void {
    for (const e of events) {
      switch (e[0]) {
        case "msg":
          this.#onDelivery(e);
          break;
        case "subok":
          this.#settle(e[1], e[2]);
          break;
        case "pubok":
          this.#settle(e[1], unpackPublished(e[2], e[3], e[4]));
          break;
        case "lost":
          this.#onLost(e[1], e[2], e[3]);
          break;
        case "answer": {
          const [, rid, value, error] = e;
          this.#settle(rid, error ? new SwitchboardError(error.code, error.message) : { answered: value });
          break;
        }
        case "pevent":
          this.#onPresence(e[1], e[2], e[3]);
          break;
        case "userAction":
          this.#onUserAction(e[1]);
          break;
      }
    }
  }

  #settle(rid: number, reply: JoinReply | Published[] | SwitchboardError | Answered): void {
    const done = this.#pending.get(rid);
    this.#pending.delete(rid);
    done?.(reply);
  }
}
