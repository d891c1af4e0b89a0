import type { Gap, Resume } from "../bus/bus.js";
import { SwitchboardError } from "../errors.js";
import type { HistoryEntry } from "../ipc.js";
import { type Claims, grants } from "./auth.js";
import type { BusClient } from "./bus-client.js";
import type { ChannelPosition, ChannelRegistry, Member } from "./channel-registry.js";

/** A member that can subscribe: the registry's member plus its token's claims. */
export type Subscriber = Member & { readonly claims: Claims | null };

/**
 * Refused, or joined at `offset`/`epoch` with history to replay; `gap` when a resume could not be served in full,
 * `recovered` when it was.
 */
export type SubscribeOutcome =
  | {
      ok: true;
      offset: number;
      epoch: string;
      history: readonly HistoryEntry[];
      gap: Gap | null;
      recovered: boolean;
    }
  | { ok: false; error: SwitchboardError };

/** Told when a member is in a channel's delivery set and when it is out of it again (presence reporting). */
export type MembershipWatcher<M> = {
  joined(member: M, channel: string): void;
  left(member: M, channel: string): void;
};

function joined(position: ChannelPosition): SubscribeOutcome {
  return { ok: true, ...position, history: [], gap: null, recovered: false };
}

/**
 * Subscribe and unsubscribe for both protocols: the token's grant, limits, the primary round trip when this
 * worker is not yet receiving a channel (or the client resumes with `since`), and telling the primary when the
 * last one leaves.
 */
export class Subscriptions<M extends Subscriber> {
  readonly #bus: Pick<BusClient, "subscribe" | "unsubscribe">;
  readonly #registry: ChannelRegistry<M>;
  readonly #maxPerMember: number;
  readonly #watcher: MembershipWatcher<M> | null;

  constructor(
    bus: Pick<BusClient, "subscribe" | "unsubscribe">,
    registry: ChannelRegistry<M>,
    maxPerMember: number,
    watcher: MembershipWatcher<M> | null = null,
  ) {
    this.#bus = bus;
    this.#registry = registry;
    this.#maxPerMember = maxPerMember;
    this.#watcher = watcher;
  }

  /**
   * `done` runs synchronously at the member's join point, so history and live messages follow in order. A member
   * that closed or unsubscribed while the primary was asked gets a plain ack (every request is answered) and is
   * not a member: callers that keep their own membership (Socket.IO rooms) check `member.channels`.
   */
  subscribe(member: M, channel: string, resume: Resume | null, done: (o: SubscribeOutcome) => void): void {
    if (!grants(member.claims, channel)) {
      const error = new SwitchboardError("forbidden", `the token does not grant channel ${channel}`);
      done({ ok: false, error });
      return;
    }
    if (member.channels.has(channel)) {
      if (this.#registry.isLive(channel)) done(joined(this.#registry.position(channel)));
      else {
        const error = new SwitchboardError("bad_request", `a subscribe to ${channel} is already pending`);
        done({ ok: false, error });
      }
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
    if (resume === null && this.#registry.isLive(channel)) {
      this.#registry.add(channel, member);
      this.#watcher?.joined(member, channel);
      done(joined(this.#registry.position(channel)));
      return;
    }
    this.#registry.beginPending(channel, member);
    this.#bus.subscribe(channel, resume, (reply) => {
      if (reply instanceof SwitchboardError) {
        const left = member.closed || !member.channels.has(channel);
        this.#registry.endPending(channel, member, null);
        this.unsubscribe(member, channel);
        done(left ? joined({ offset: 0, epoch: "" }) : { ok: false, error: reply });
      } else if (this.#registry.endPending(channel, member, reply)) {
        this.#watcher?.joined(member, channel);
        done({ ok: true, ...reply });
      } else {
        this.unsubscribe(member, channel);
        done(joined(reply));
      }
    });
  }

  unsubscribe(member: M, channel: string): void {
    if (this.#watcher && member.channels.has(channel)) this.#watcher.left(member, channel);
    if (this.#registry.remove(channel, member)) this.#bus.unsubscribe(channel);
  }

  /** A member disconnected: leave all its channels. */
  leaveAll(member: M): void {
    if (this.#watcher) for (const channel of member.channels) this.#watcher.left(member, channel);
    for (const channel of this.#registry.removeAll(member)) this.#bus.unsubscribe(channel);
  }
}
