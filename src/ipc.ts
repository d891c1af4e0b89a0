import type { JoinReply, Published } from "./bus/bus.js";
import type { Config } from "./config.js";
import type { ErrorCode } from "./errors.js";
import type { HistogramSnapshot } from "./metrics/latency-histogram.js";
import type { Readiness } from "./readiness.js";

/**
 * Messages between the primary and its workers (node:cluster IPC, advanced serialization).
 * Each direction batches everything of one event-loop turn into a single message, in order, because
 * the order carries meaning: a subscribe reply sits exactly between the deliveries before and after it.
 */

/** Tag on every Switchboard IPC message; Socket.IO's adapter and @socket.io/sticky use their own. */
export const IPC_TAG = "switchboard";

/** A delivered message inside a batch: channel, offset, data as JSON text, when this host accepted it (ms epoch). */
export type Delivery = ["msg", channel: string, offset: number, dataJson: string, acceptedAt: number];

export type HistoryEntry = [offset: number, dataJson: string];

/** A message to sequence: channel, data as JSON text, idempotency key (or null). */
export type OutgoingMessage = [channel: string, dataJson: string, idempotencyKey: string | null];

/** Worker → primary operations. */
export type UpOp =
  /** Start delivering `channel` to this worker; reply at the join point, with history after `since` when not null. */
  | ["sub", rid: number, channel: string, since: number | null, epoch: string | null]
  /** No local subscriber is left for `channel`. */
  | ["unsub", channel: string]
  | ["pub", rid: number, messages: OutgoingMessage[]]
  | ["stats", stats: WorkerStats]
  /** A client joined a presence channel here (`infoJson`: the connect hook's info, or null). */
  | ["pjoin", channel: string, client: string, user: string | null, infoJson: string | null]
  | ["pleave", channel: string, client: string]
  /** A connection closed (for the connection_closed webhook; sent only with --webhook). */
  | ["closed", client: string, user: string | null, reason: string]
  /** A question for the primary (server API: presence, history, channels, user actions); answered by `answer`. */
  | ["ask", rid: number, question: Question];

/** What the server API asks the primary (docs/backend.md). */
export type Question =
  | { kind: "presence"; channel: string }
  | { kind: "presenceStats"; channel: string }
  | { kind: "history"; channel: string; since: number | null; epoch: string | null; limit: number }
  | { kind: "channels"; pattern: string | null; cursor: string | null; limit: number }
  | { kind: "userAction"; action: UserAction };

/** What the server API does to a user's connections on every worker of every host. */
export type UserAction =
  | { kind: "disconnect"; user: string; code: number; reason: string; reconnect: boolean }
  | { kind: "unsubscribe"; user: string; channel: string }
  | { kind: "refresh"; user: string; expireAt: number };

/** A presence entry: one client in a channel. */
export type PresenceEntry = { client: string; user: string | null; info: unknown };

/** Primary → worker events. */
export type DownEvent =
  | Delivery
  | ["subok", rid: number, reply: JoinReply]
  /** One offset per message; the epoch once when all share it (the usual case); indexes of repeated keys. */
  | ["pubok", rid: number, offsets: number[], epochs: string | string[], duplicates: number[] | null]
  /** Messages of `channel` may not have reached this host: subscribers' position is now (epoch, offset). */
  | ["lost", channel: string, offset: number, epoch: string]
  /** The answer to an `ask` (a JSON-ready value, or an error). */
  | ["answer", rid: number, value: unknown, error: { code: ErrorCode; message: string } | null]
  /** A user joined or left a presence channel with joinLeave: subscribers here get a join/leave message. */
  | ["pevent", channel: string, kind: "join" | "leave", entry: PresenceEntry]
  /** A server API action for this worker's connections of a user. */
  | ["userAction", action: UserAction];

export type WorkerStats = {
  rawConnections: number;
  sioConnections: number;
  delivered: number;
  /** Socket writes of queued frames (deliveries ÷ writes: how many frames load gathered per syscall). */
  socketWrites: number;
  slowConsumers: number;
  /** Clients told to come back elsewhere by a drain (reconnect frame, or a Socket.IO transport close). */
  drained: number;
  errors: Record<string, number>;
  /** Backend hook calls by `<hook> <outcome>` (outcome: ok, denied, timeout, failed, overloaded). */
  hookCalls: Record<string, number>;
  /** How long each hook call took, by hook (bucket counts since the worker started). */
  hookLatency: Record<string, HistogramSnapshot>;
  /** Accepted by this host → written to the socket, per message delivered here (since the worker started). */
  fanout: HistogramSnapshot;
  /** The event loop over the last report interval: delay p99 (ms) and utilisation (0-1). */
  eventLoop: { lagP99Ms: number; utilization: number };
  rssBytes: number;
  /** When the worker took these figures (ms since the epoch): a reader can wait for a report newer than an event. */
  at: number;
};

export type ToPrimary =
  /**
   * A new worker asks for its configuration once it listens (a message sent before a listener exists is lost, so the
   * primary cannot just send it after forking).
   */
  | { tag: typeof IPC_TAG; kind: "hello" }
  | { tag: typeof IPC_TAG; kind: "ready" }
  | { tag: typeof IPC_TAG; kind: "up"; ops: UpOp[] }
  /** The answer to a `ping`, sent from the worker's event loop: it still runs and reads its IPC. */
  | { tag: typeof IPC_TAG; kind: "pong"; seq: number }
  /** The answer to `topChannels`: this worker's channels matching it, with their subscribers here. */
  | {
      tag: typeof IPC_TAG;
      kind: "topChannels";
      qid: number;
      channels: [channel: string, subscribers: number][];
    };

export type ToWorker =
  | { tag: typeof IPC_TAG; kind: "down"; events: DownEvent[] }
  | { tag: typeof IPC_TAG; kind: "drain"; windowMs: number; deadlineMs: number; reason: string }
  /** The worker's configuration, the answer to its `hello` (no setting travels in the environment). */
  | { tag: typeof IPC_TAG; kind: "config"; config: Config }
  /** What /health and /ready answer now (the primary's view), for requests on kept-alive connections. */
  | { tag: typeof IPC_TAG; kind: "readiness"; readiness: Readiness }
  /** Liveness heartbeat (about once a second): the worker answers `pong` with the same `seq`. */
  | { tag: typeof IPC_TAG; kind: "ping"; seq: number }
  /** The admin page's channel search: this worker's channels containing `text`, most subscribers first. */
  | { tag: typeof IPC_TAG; kind: "topChannels"; qid: number; text: string; limit: number };

export function isSwitchboardMessage<T extends { tag: string }>(m: unknown): m is T {
  return typeof m === "object" && m !== null && (m as { tag?: unknown }).tag === IPC_TAG;
}

/** Published results as a compact `pubok` (IPC serializes arrays of numbers far cheaper than objects). */
export function packPublished(results: readonly Published[]): [number[], string | string[], number[] | null] {
  const offsets = results.map((r) => r.offset);
  const first = results[0]?.epoch ?? "";
  const epochs = results.every((r) => r.epoch === first) ? first : results.map((r) => r.epoch);
  const repeated: number[] = [];
  results.forEach((r, i) => {
    if (r.duplicate) repeated.push(i);
  });
  return [offsets, epochs, repeated.length > 0 ? repeated : null];
}

export function unpackPublished(
  offsets: number[],
  epochs: string | string[],
  duplicates: number[] | null,
): Published[] {
  const repeated = new Set(duplicates ?? []);
  return offsets.map((offset, i) => ({
    offset,
    epoch: typeof epochs === "string" ? epochs : (epochs[i] as string),
    duplicate: repeated.has(i),
  }));
}
