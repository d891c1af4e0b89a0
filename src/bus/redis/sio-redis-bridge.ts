import cluster, { type Worker } from "node:cluster";
import type { Logger } from "../../log.js";
import type { Supervisor } from "../../primary/supervisor.js";
import type { RedisLink } from "./redis-link.js";
import { decodeSioMessage, encodeSioMessage, type RedisNames } from "./redis-wire.js";

/** The tag @socket.io/cluster-adapter puts on its IPC messages. */
const SOURCE = "_sio_adapter";
/** Remote adapter uids remembered for routing responses straight to their host (oldest forgotten first). */
const MAX_REMOTE_UIDS = 10_000;

export type SioCounters = { relayed: number; received: number; unrelayed: number };

/**
 * Carries Socket.IO's own cross-node traffic (`io.to(room).emit`, `fetchSockets`, `serverSideEmit`, heartbeats)
 * between hosts. Inside a host, @socket.io/cluster-adapter's setupPrimary() relays it between workers over IPC;
 * this bridge also publishes what local workers send to `<prefix>:sio` and hands what other hosts send to the
 * local workers, so every worker of every host is one node of one Socket.IO cluster. Responses go only to the
 * host whose worker asked (`<prefix>:sio:<origin>`), once that host is known.
 */
export class SioRedisBridge {
  readonly #link: RedisLink;
  readonly #names: RedisNames;
  readonly #origin: Buffer;
  readonly #supervisor: Supervisor;
  readonly #log: Logger;
  readonly counters: SioCounters = { relayed: 0, received: 0, unrelayed: 0 };
  /** Adapter uid → local worker id (one uid per namespace per worker). */
  readonly #localUids = new Map<string, number>();
  /** Adapter uid → origin of the host it lives on. */
  readonly #remoteUids = new Map<string, string>();
  readonly #onWorkerMessage = (worker: Worker, message: unknown) => this.#fromWorker(worker, message);
  readonly #onWorkerExit = (worker: Worker) => {
    for (const [uid, id] of this.#localUids) if (id === worker.id) this.#localUids.delete(uid);
  };

  constructor(o: {
    link: RedisLink;
    names: RedisNames;
    origin: Buffer;
    supervisor: Supervisor;
    log: Logger;
  }) {
    this.#link = o.link;
    this.#names = o.names;
    this.#origin = o.origin;
    this.#supervisor = o.supervisor;
    this.#log = o.log;
    cluster.on("message", this.#onWorkerMessage);
    cluster.on("exit", this.#onWorkerExit);
    o.link.subscribe(o.names.sio);
    o.link.subscribe(o.names.sioDirect(o.origin.toString("latin1")));
  }

  /** True for the Redis channels this bridge reads. */
  owns(redisChannel: string): boolean {
    return redisChannel.startsWith(this.#names.sio);
  }

  #fromWorker(worker: Worker, message: unknown): void {
    if (!isAdapterMessage(message)) return;
    if (typeof message.uid === "string") this.#localUids.set(message.uid, worker.id);
    const requester = message.requesterUid;
    let channel = this.#names.sio;
    if (typeof requester === "string") {
      // A response: setupPrimary() already handed it to a local requester.
      if (this.#localUids.has(requester)) return;
      const origin = this.#remoteUids.get(requester);
      if (origin) channel = this.#names.sioDirect(origin);
    }
    const node = this.#link.nodeFor(channel);
    if (!node) {
      this.counters.unrelayed += 1;
      return;
    }
    node.publishRaw(channel, encodeSioMessage(this.#origin, message), (ok) => {
      if (ok) this.counters.relayed += 1;
      else this.counters.unrelayed += 1;
    });
  }

  /** A message from another host: to the requesting worker for a response, to every local worker otherwise. */
  fromRedis(payload: Buffer): void {
    const envelope = decodeSioMessage(payload, this.#origin);
    if (!envelope || envelope.message.source !== SOURCE) return;
    const { origin, message } = envelope;
    this.counters.received += 1;
    if (typeof message.uid === "string" && this.#remoteUids.get(message.uid) !== origin) {
      this.#remoteUids.delete(message.uid);
      this.#remoteUids.set(message.uid, origin);
      if (this.#remoteUids.size > MAX_REMOTE_UIDS) {
        const oldest = this.#remoteUids.keys().next().value;
        if (oldest !== undefined) this.#remoteUids.delete(oldest);
      }
    }
    const requester = message.requesterUid;
    if (typeof requester === "string") {
      const workerId = this.#localUids.get(requester);
      const info = workerId === undefined ? undefined : this.#supervisor.info(workerId);
      if (info) this.#supervisor.sendAny(info, message);
      return;
    }
    for (const info of this.#supervisor.workers) this.#supervisor.sendAny(info, message);
  }

  close(): void {
    cluster.off("message", this.#onWorkerMessage);
    cluster.off("exit", this.#onWorkerExit);
    this.#log.debug(this.counters, "Socket.IO bridge closed");
  }
}

type AdapterMessage = { source: string; uid?: unknown; requesterUid?: unknown };

function isAdapterMessage(m: unknown): m is AdapterMessage {
  return typeof m === "object" && m !== null && (m as { source?: unknown }).source === SOURCE;
}
