import { type DownEvent, IPC_TAG, type UpOp } from "../ipc.js";
import type { ChannelHub } from "./channel-hub.js";
import type { Relay } from "./relay.js";
import type { Supervisor, WorkerInfo } from "./supervisor.js";

/**
 * The primary end of the in-host bus: applies each worker's batched operations to the hub in order and sends
 * each worker one batch of events per event-loop turn, only for channels it has subscribers for.
 */
export class WorkerBridge {
  readonly #hub: ChannelHub;
  readonly #supervisor: Supervisor;
  readonly #outbox = new Map<number, DownEvent[]>();
  #flushScheduled = false;
  #relay: Relay | null = null;
  published = 0;

  readonly #onStats: (info: WorkerInfo) => void;

  /** `onStats` runs when a worker reports its counts (once a second). */
  constructor(hub: ChannelHub, supervisor: Supervisor, onStats: (info: WorkerInfo) => void) {
    this.#hub = hub;
    this.#supervisor = supervisor;
    this.#onStats = onStats;
  }

  /** Hands sequencing to a cross-host relay (with --redis). */
  useRelay(relay: Relay): void {
    this.#relay = relay;
  }

  apply(info: WorkerInfo, ops: UpOp[]): void {
    const id = info.worker.id;
    for (const op of ops) {
      switch (op[0]) {
        case "sub": {
          const [, rid, channel, since] = op;
          this.#hub.subscribe(id, channel);
          const reply = () => {
            const r = this.#hub.replay(channel, since);
            this.#push(id, ["subok", rid, r.offset, r.history, r.gap]);
          };
          // With a relay the reply waits until other hosts' messages arrive here too, so its offset and history
          // are those of the join point. The worker sends no unsub for a channel while a sub is pending.
          if (!this.#relay) reply();
          else this.#relay.whenSubscribed(channel, () => this.#supervisor.info(id) && reply());
          break;
        }
        case "unsub":
          this.#hub.unsubscribe(id, op[1]);
          break;
        case "pub": {
          const [, rid, messages] = op;
          if (this.#relay) {
            this.published += messages.length;
            this.#relay.publish(messages, (offsets) => this.#push(id, ["pubok", rid, offsets]));
            break;
          }
          const offsets = messages.map(([channel, dataJson]) => this.publish(channel, dataJson));
          this.#push(id, ["pubok", rid, offsets]);
          break;
        }
        case "stats":
          info.stats = op[1];
          this.#onStats(info);
          break;
      }
    }
  }

  /** Sequences one message and queues it for every interested worker; returns its offset. */
  publish(channel: string, dataJson: string): number {
    const { offset, workers } = this.#hub.publish(channel, dataJson);
    this.published += 1;
    for (const workerId of workers) this.#push(workerId, ["msg", channel, offset, dataJson]);
    return offset;
  }

  /** Delivers a message the relay sequenced (here or on another host) to every interested worker. */
  deliver(channel: string, offset: number, dataJson: string): void {
    for (const workerId of this.#hub.append(channel, offset, dataJson))
      this.#push(workerId, ["msg", channel, offset, dataJson]);
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
