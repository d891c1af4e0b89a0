import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChannelRegistry, type Member } from "../../src/worker/channel-registry.js";

const member = (protocol: "raw" | "sio"): Member & { closed: boolean } => ({
  protocol,
  channels: new Set(),
  closed: false,
});

describe("ChannelRegistry", () => {
  it("joins a pending member at the reply and marks the channel live", () => {
    const r = new ChannelRegistry<Member>();
    const m = member("raw");
    assert.equal(r.isLive("a"), false);
    r.beginPending("a", m);
    assert.equal(r.rawMembers("a")?.size, 0);
    assert.equal(r.endPending("a", m, { offset: 3, epoch: "E" }), true);
    assert.equal(r.isLive("a"), true);
    assert.deepEqual([...(r.rawMembers("a") ?? [])], [m]);
    assert.deepEqual(r.position("a"), { offset: 3, epoch: "E" }, "the join point is the channel's position");
    r.delivered("a", 4);
    assert.deepEqual(r.position("a"), { offset: 4, epoch: "E" });
    r.moved("a", { offset: 9, epoch: "F" });
    assert.deepEqual(r.position("a"), { offset: 9, epoch: "F" });
  });

  it("does not join a member that closed while pending", () => {
    const r = new ChannelRegistry<Member>();
    const m = member("raw");
    r.beginPending("a", m);
    m.closed = true;
    assert.equal(r.endPending("a", m, { offset: 3, epoch: "E" }), false);
    assert.equal(r.remove("a", m), true, "the now-empty live channel is reported for unsubscribe");
  });

  it("reports a channel empty only when the last member of either protocol leaves", () => {
    const r = new ChannelRegistry<Member>();
    const raw = member("raw");
    const sio = member("sio");
    r.beginPending("a", raw);
    r.endPending("a", raw, { offset: 0, epoch: "E" });
    r.add("a", sio);
    assert.equal(r.sioMembers("a")?.size, 1);
    assert.equal(r.remove("a", raw), false);
    assert.deepEqual(r.removeAll(sio), ["a"]);
    assert.equal(r.size, 0);
  });
});
