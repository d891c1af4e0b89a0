import { SwitchboardError } from "../errors.js";
import type { HistoryEntry } from "../ipc.js";
import { type Claims, grants } from "./auth.js";
import type { BusClient } from "./bus-client.js";
import type { ChannelRegistry, Member } from "./channel-registry.js";

/** A member that can subscribe: the registry's member plus its token's claims. */
export type Subscriber = Member & { readonly claims: Claims | null };

/** Refused, or joined with history to replay; `gap` when a resume (`since`) asked for more than history holds. */
export type SubscribeOutcome =
  | { ok: true; history: readonly HistoryEntry[]; gap: { message: string; offset: number } | null }
  | { ok: false; error: SwitchboardError };

const JOINED: SubscribeOutcome = { ok: true, history: [], gap: null };

/**
 * Subscribe and unsubscribe for both protocols: the token's grant, limits, the primary round trip when this
 * worker is not yet receiving a channel (or the client resumes with `since`), and telling the primary when the
 * last one leaves.
 */
export class Subscriptions<M extends Subscriber> {
  readonly #bus: Pick<BusClient, "subscribe" | "unsubscribe">;
  readonly #registry: ChannelRegistry<M>;
  readonly #maxPerMember: number;

  constructor(
    bus: Pick<BusClient, "subscribe" | "unsubscribe">,
    registry: ChannelRegistry<M>,
    maxPerMember: number,
  ) {
    this.#bus = bus;
    this.#registry = registry;
    this.#maxPerMember = maxPerMember;
  }

  /**
   * `done` runs synchronously at the member's join point, so history and live messages follow in order. A member
   * that closed or unsubscribed while the primary was asked gets a plain ack (every request is answered) and is
   * not a member: callers that keep their own membership (Socket.IO rooms) check `member.channels`.
   */
  subscribe(member: M, channel: string, since: number | null, done: (o: SubscribeOutcome) => void): void {
    if (!grants(member.claims, channel)) {
      const error = new SwitchboardError("forbidden", `the token does not grant channel ${channel}`);
      done({ ok: false, error });
      return;
    }
    if (member.channels.has(channel)) {
      done(JOINED);
      return;
    }
    if (member.channels.size >= this.#maxPerMember) {
      const error = new SwitchboardError(
        "too_many_subscriptions",
        `a connection may hold at most ${this.#maxPerMember} subscriptions`,
      );
      done({ ok: false, error });
      return;
    }
    if (since === null && this.#registry.isLive(channel)) {
      this.#registry.add(channel, member);
      done(JOINED);
      return;
    }
    this.#registry.beginPending(channel, member);
    this.#bus.subscribe(channel, since, (reply) => {
      if (reply instanceof SwitchboardError) {
        const left = member.closed || !member.channels.has(channel);
        this.#registry.endPending(channel, member, false);
        this.unsubscribe(member, channel);
        done(left ? JOINED : { ok: false, error: reply });
      } else if (this.#registry.endPending(channel, member, true)) {
        const gap = reply.gap
          ? { message: `messages after offset ${since} are no longer in history`, offset: reply.offset }
          : null;
        done({ ok: true, history: reply.history ?? [], gap });
      } else {
        this.unsubscribe(member, channel);
        done(JOINED);
      }
    });
  }

  unsubscribe(member: M, channel: string): void {
    if (this.#registry.remove(channel, member)) this.#bus.unsubscribe(channel);
  }

  /** A member disconnected: leave all its channels. */
  leaveAll(member: M): void {
    for (const channel of this.#registry.removeAll(member)) this.#bus.unsubscribe(channel);
  }
}
