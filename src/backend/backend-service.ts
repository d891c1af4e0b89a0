import type { Bus } from "../bus/bus.js";
import { SwitchboardError } from "../errors.js";
import type { DownEvent, PresenceEntry, Question, UpOp } from "../ipc.js";
import type { Logger } from "../log.js";
import type { Namespaces } from "../namespaces.js";
import type { ClusterEvent, ClusterState, PresenceLeave } from "./cluster-state.js";
import type { WebhookSender } from "./webhooks.js";

export type BackendServiceDeps = {
  state: ClusterState;
  webhooks: WebhookSender | null;
  bus: Bus;
  namespaces: Namespaces;
  log: Logger;
  send(workerId: number, event: DownEvent): void;
  sendToInterested(channel: string, event: DownEvent): void;
  sendToAll(event: DownEvent): void;
};

/** Backend ops of the worker protocol (ipc.ts): presence reports, closed connections, server API questions. */
export type BackendOp = Extract<UpOp, { 0: "pjoin" | "pleave" | "closed" | "ask" }>;

/**
 * The primary's part in what the backend sees beyond messages: presence (kept in the ClusterState, join/leave
 * messages to subscribers where the namespace asks for them), webhooks (occupancy, presence, closed connections)
 * and the answers to the server API's questions. It remembers which worker holds which presence client, so a
 * worker that dies takes its clients out of presence.
 */
export class BackendService {
  readonly #d: BackendServiceDeps;
  /** Presence channel → client → its entry and the worker that holds it. */
  readonly #local = new Map<string, Map<string, { worker: number; entry: PresenceEntry }>>();

  constructor(d: BackendServiceDeps) {
    this.#d = d;
    d.state.onEvent((event) => this.#onClusterEvent(event));
    d.state.onExpired((vacated, leaves) => {
      for (const channel of vacated) d.webhooks?.emit("channel_vacated", { channel });
      for (const leave of leaves) this.#left(leave);
    });
  }

  apply(workerId: number, op: BackendOp): void {
    switch (op[0]) {
      case "pjoin": {
        const [, channel, client, user, infoJson] = op;
        let clients = this.#local.get(channel);
        if (!clients) {
          clients = new Map();
          this.#local.set(channel, clients);
        }
        const entry: PresenceEntry = { client, user, info: infoJson === null ? null : JSON.parse(infoJson) };
        clients.set(client, { worker: workerId, entry });
        this.#d.state.join(channel, entry).then(
          (first) => first && this.#joined(channel, entry),
          (err: Error) => this.#d.log.warn({ err: err.message, channel }, "presence join not recorded"),
        );
        return;
      }
      case "pleave":
        return this.#leave(op[1], op[2]);
      case "closed": {
        const [, client, user, reason] = op;
        this.#d.webhooks?.emit("connection_closed", { client, user, reason });
        return;
      }
      case "ask": {
        const [, rid, question] = op;
        this.#answer(question).then(
          (value) => this.#d.send(workerId, ["answer", rid, value, null]),
          (err: unknown) => {
            const e = err instanceof SwitchboardError ? err : null;
            if (!e) this.#d.log.warn({ err, kind: question.kind }, "server API question failed");
            const error = e
              ? { code: e.code, message: e.message }
              : { code: "unavailable" as const, message: `could not answer: ${(err as Error).message}` };
            this.#d.send(workerId, ["answer", rid, null, error]);
          },
        );
        return;
      }
    }
  }

  /** This host's interest in a channel changed: recorded (the channel list), webhooks when the cluster's did. */
  interest(channel: string, interested: boolean): void {
    this.#d.state.occupancy(channel, interested).then(
      (changed) =>
        changed && this.#d.webhooks?.emit(interested ? "channel_occupied" : "channel_vacated", { channel }),
      (err: Error) => this.#d.log.warn({ err: err.message, channel }, "occupancy not recorded"),
    );
  }

  /** A worker exited: its presence clients leave. */
  workerExited(workerId: number): void {
    for (const [channel, clients] of [...this.#local])
      for (const [client, { worker }] of [...clients]) if (worker === workerId) this.#leave(channel, client);
  }

  /** This host's presence entries per channel (for the Redis refresh). */
  *localPresence(): Iterable<[string, PresenceEntry[]]> {
    for (const [channel, clients] of this.#local) yield [channel, [...clients.values()].map((c) => c.entry)];
  }

  #leave(channel: string, client: string): void {
    const clients = this.#local.get(channel);
    if (!clients?.delete(client)) return;
    if (clients.size === 0) this.#local.delete(channel);
    this.#d.state.leave(channel, client).then(
      (leave) => leave && this.#left(leave),
      (err: Error) => this.#d.log.warn({ err: err.message, channel }, "presence leave not recorded"),
    );
  }

  #joined(channel: string, entry: PresenceEntry): void {
    this.#d.webhooks?.emit("presence_join", {
      channel,
      client: entry.client,
      user: entry.user,
      info: entry.info,
    });
    if (this.#d.namespaces.of(channel).joinLeave)
      this.#d.state.broadcast({ kind: "presence", channel, change: "join", entry });
  }

  #left({ channel, entry, lastOfUser }: PresenceLeave): void {
    if (!lastOfUser) return;
    this.#d.webhooks?.emit("presence_leave", { channel, client: entry.client, user: entry.user });
    if (this.#d.namespaces.of(channel).joinLeave)
      this.#d.state.broadcast({ kind: "presence", channel, change: "leave", entry });
  }

  #onClusterEvent(event: ClusterEvent): void {
    if (event.kind === "presence")
      this.#d.sendToInterested(event.channel, ["pevent", event.channel, event.change, event.entry]);
    else this.#d.sendToAll(["userAction", event.action]);
  }

  async #answer(q: Question): Promise<unknown> {
    switch (q.kind) {
      case "presence":
        this.#requirePresence(q.channel);
        return { channel: q.channel, clients: await this.#d.state.presence(q.channel) };
      case "presenceStats":
        this.#requirePresence(q.channel);
        return { channel: q.channel, ...(await this.#d.state.stats(q.channel)) };
      case "channels":
        return this.#d.state.channels(q.pattern, q.cursor, q.limit);
      case "history":
        return this.#history(q.channel, q.since, q.epoch, q.limit);
      case "userAction":
        this.#d.state.broadcast({ kind: "userAction", action: q.action });
        return { ok: true };
    }
  }

  #requirePresence(channel: string): void {
    if (!this.#d.namespaces.of(channel).presence)
      throw new SwitchboardError(
        "bad_request",
        `presence is off for channel ${channel}: set "presence": true for its namespace`,
      );
  }

  #history(channel: string, since: number | null, epoch: string | null, limit: number): Promise<unknown> {
    return new Promise((resolve) => {
      this.#d.bus.history(channel, since === null ? null : { since, epoch }, (reply) => {
        // Without `since` the caller asked for what is kept (its last `limit`), not for a resume: no gap then.
        const messages = since === null ? reply.history.slice(-limit) : reply.history.slice(0, limit);
        const gap = since === null && reply.gap?.reason !== "history_unavailable" ? null : reply.gap;
        resolve({
          channel,
          offset: reply.offset,
          epoch: reply.epoch,
          messages: messages.map(([offset, dataJson]) => ({ offset, data: JSON.parse(dataJson) })),
          ...(gap ? { gap: { reason: gap.reason, message: gap.message } } : {}),
        });
      });
    });
  }
}
