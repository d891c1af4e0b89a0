import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JoinReply } from "../../src/bus/bus.js";
import { SwitchboardError } from "../../src/errors.js";
import type { BusClient } from "../../src/worker/bus-client.js";
import { ChannelRegistry } from "../../src/worker/channel-registry.js";
import { type SubscribeOutcome, type Subscriber, Subscriptions } from "../../src/worker/subscriptions.js";

/** A bus whose subscribe replies the test sends by hand. */
function fakeBus() {
  const replies: ((r: JoinReply | SwitchboardError) => void)[] = [];
  const unsubscribed: string[] = [];
  const bus: Pick<BusClient, "subscribe" | "unsubscribe"> = {
    subscribe: (_channel, _since, done) => void replies.push(done),
    unsubscribe: (channel) => void unsubscribed.push(channel),
  };
  return { bus, replies, unsubscribed };
}

const member = (channels?: string[]): Subscriber & { closed: boolean } => ({
  protocol: "raw",
  channels: new Set(),
  closed: false,
  claims: channels ? { channels } : null,
});

const accepted: JoinReply = { offset: 7, epoch: "E", history: [[7, '"h"']], gap: null, recovered: true };

function setup() {
  const { bus, replies, unsubscribed } = fakeBus();
  const registry = new ChannelRegistry<Subscriber>();
  const subs = new Subscriptions(bus, registry, 2);
  const outcomes: SubscribeOutcome[] = [];
  const record = (o: SubscribeOutcome) => void outcomes.push(o);
  return { subs, registry, replies, unsubscribed, outcomes, record };
}

describe("Subscriptions", () => {
  it("refuses a channel the token does not grant, before anything else", () => {
    const { subs, replies, outcomes, record } = setup();
    subs.subscribe(member(["news"]), "secret", null, record);
    assert.equal(replies.length, 0);
    assert.deepEqual(
      outcomes.map((o) => !o.ok && [o.error.code, o.error.message]),
      [["forbidden", "the token does not grant channel secret"]],
    );
  });

  it("joins at the primary's reply with its position and history, and passes a gap on", () => {
    const { subs, registry, replies, outcomes, record } = setup();
    const m = member();
    subs.subscribe(m, "a", { since: 6, epoch: "E" }, record);
    replies[0]?.(accepted);
    assert.deepEqual(outcomes, [{ ok: true, ...accepted }]);
    assert.deepEqual([...(registry.rawMembers("a") ?? [])], [m]);
    assert.deepEqual(registry.position("a"), { offset: 7, epoch: "E" });
    const gap = { reason: "history_trimmed" as const, message: "gone" };
    subs.subscribe(member(), "b", { since: 3, epoch: null }, record);
    replies[1]?.({ offset: 9, epoch: "F", history: [], gap, recovered: false });
    assert.deepEqual(outcomes[1], { ok: true, offset: 9, epoch: "F", history: [], gap, recovered: false });
  });

  it("joins a live channel at once with the position this worker has seen, and refuses a second pending one", () => {
    const { subs, registry, replies, outcomes, record } = setup();
    const first = member();
    subs.subscribe(first, "a", null, record);
    subs.subscribe(first, "a", null, record);
    assert.deepEqual(
      outcomes.map((o) => !o.ok && o.error.code),
      ["bad_request"],
      "a repeat while the first is pending is refused",
    );
    replies[0]?.(accepted);
    registry.delivered("a", 8);
    subs.subscribe(member(), "a", null, record);
    assert.equal(replies.length, 1, "no round trip to the primary");
    assert.deepEqual(outcomes[2], {
      ok: true,
      offset: 8,
      epoch: "E",
      history: [],
      gap: null,
      recovered: false,
    });
  });

  it("answers a member that unsubscribed or closed while the primary was asked with a plain ack, not a membership", () => {
    const { subs, registry, replies, unsubscribed, outcomes, record } = setup();
    const gone = member();
    const closed = member();
    subs.subscribe(gone, "a", null, record);
    subs.subscribe(closed, "a", null, record);
    subs.unsubscribe(gone, "a");
    closed.closed = true;
    subs.leaveAll(closed);
    replies[0]?.(accepted);
    replies[1]?.(accepted);
    const plain = { ok: true, offset: 7, epoch: "E", history: [], gap: null, recovered: false };
    assert.deepEqual(outcomes, [plain, plain], "every request is answered, with no history");
    assert.equal(registry.rawMembers("a"), undefined);
    assert.equal(gone.channels.has("a"), false, "not a member: no room to join");
    assert.deepEqual(unsubscribed, ["a"], "the primary is told nobody here wants the channel");
  });

  it("passes a refusal on; a member that left gets a plain ack", () => {
    const { subs, replies, outcomes, record } = setup();
    const stays = member();
    const gone = member();
    subs.subscribe(stays, "a", null, record);
    subs.subscribe(gone, "b", null, record);
    subs.unsubscribe(gone, "b");
    replies[0]?.(new SwitchboardError("unavailable", "primary is gone"));
    replies[1]?.(new SwitchboardError("unavailable", "primary is gone"));
    assert.deepEqual(
      outcomes.map((o) => (o.ok ? "ack" : o.error.code)),
      ["unavailable", "ack"],
    );
    assert.equal(stays.channels.size, 0);
  });
});
