import { SwitchboardError } from "../errors.js";
import type { BusClient, SubscribeReply } from "./bus-client.js";
import type { ChannelRegistry, Member } from "./channel-registry.js";

export type SubscribeOutcome =
  | { ok: true; reply: SubscribeReply | null }
  | { ok: false; error: SwitchboardError };

/**
 * Subscribe and unsubscribe for both protocols: limits, the primary round trip when this worker is not yet
 * receiving a channel (or the client resumes with `since`), and telling the primary when the last one leaves.
 */
export class Subscriptions<M extends Member> {
  readonly #bus: BusClient;
  readonly #registry: ChannelRegistry<M>;
  readonly #maxPerMember: number;

  constructor(bus: BusClient, registry: ChannelRegistry<M>, maxPerMember: number) {
    this.#bus = bus;
    this.#registry = registry;
    this.#maxPerMember = maxPerMember;
  }

  /** `done` runs synchronously at the member's join point, so history and live messages follow in order. */
  subscribe(member: M, channel: string, since: number | null, done: (o: SubscribeOutcome) => void): void {
    if (member.channels.has(channel)) {
      done({ ok: true, reply: null });
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
      done({ ok: true, reply: null });
      return;
    }
    this.#registry.beginPending(channel, member);
    this.#bus.subscribe(channel, since, (reply) => {
      const joined = !(reply instanceof SwitchboardError);
      if (!this.#registry.endPending(channel, member, joined)) {
        if (this.#registry.remove(channel, member)) this.#bus.unsubscribe(channel);
      }
      done(joined ? { ok: true, reply } : { ok: false, error: reply });
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
