import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Published } from "../../src/bus/bus.js";
import { ChannelOrder } from "../../src/bus/redis/channel-order.js";

type Fill = { from: number; to: number; done: (entries: [number, string][] | null) => void };

const E = "redis-epoch";

/** A ChannelOrder joined at `last` in epoch E (synced), or free; its sink records what it was told. */
function setup(last = 0, phase: "synced" | "free" = "synced") {
  const delivered: [number, string][] = [];
  const lost: [number, string][] = [];
  const fills: Fill[] = [];
  let missed = 0;
  let resyncs = 0;
  let epochs = 0;
  const order = new ChannelOrder(
    {
      deliver: (offset, data) => delivered.push([offset, data]),
      lost: (offset, epoch) => lost.push([offset, epoch]),
      fill: (from, to, done) => fills.push({ from, to, done }),
      resync: () => {
        resyncs += 1;
      },
      missed: (n) => {
        missed += n;
      },
    },
    () => `local-${++epochs}`,
  );
  order.hold();
  order.release(last, E, false);
  if (phase === "free") order.free();
  const done: Published[] = [];
  const own = (data: string) => order.own(data, (r) => done.push(r));
  const ok = (offset: number, epoch = E): Published => ({ offset, epoch, duplicate: false });
  return {
    order,
    delivered,
    lost,
    fills,
    done,
    own,
    ok,
    missed: () => missed,
    resyncs: () => resyncs,
    offsets: () => delivered.map(([o]) => o),
  };
}

describe("ChannelOrder", () => {
  it("merges own replies and other hosts' messages in offset order", () => {
    const t = setup(10);
    const p = t.own("mine");
    t.order.remote(11, E, "r11");
    assert.equal(t.delivered.length, 0, "a pending own publish may come first: wait");
    t.order.echo(12, E);
    t.order.remote(13, E, "r13");
    t.order.settle(p, t.ok(12));
    assert.deepEqual(t.delivered, [
      [11, "r11"],
      [12, "mine"],
      [13, "r13"],
    ]);
    assert.deepEqual(t.done, [t.ok(12)]);
    assert.equal(t.missed(), 0);
    assert.deepEqual(t.order.position(), { offset: 13, epoch: E });
  });

  it("delivers an own message before a later remote one that overtook its reply", () => {
    const t = setup(0);
    const p = t.own("mine");
    t.order.remote(2, E, "r2");
    t.order.settle(p, t.ok(1));
    assert.deepEqual(t.offsets(), [1, 2]);
  });

  it("holds an own message behind a gap until the subscription has passed it", () => {
    const t = setup(4);
    t.order.settle(t.own("mine"), t.ok(6));
    assert.equal(t.order.stalled, true, "offset 5 may still be on its way");
    assert.equal(t.delivered.length, 0);
    t.order.remote(5, E, "r5");
    assert.deepEqual(t.offsets(), [5, 6]);
    assert.equal(t.order.stalled, false);
  });

  it("fills a gap the echo proves permanent from history, in order, before what follows", () => {
    const t = setup(4);
    t.order.settle(t.own("mine"), t.ok(8));
    t.order.echo(8, E);
    assert.deepEqual(
      t.fills.map(({ from, to }) => [from, to]),
      [[5, 7]],
    );
    t.order.remote(9, E, "r9");
    assert.equal(t.delivered.length, 0, "nothing passes a fill that is out");
    t.fills[0]?.done([
      [5, "h5"],
      [6, "h6"],
      [7, "h7"],
    ]);
    assert.deepEqual(t.offsets(), [5, 6, 7, 8, 9]);
    assert.equal(t.missed(), 0);
    assert.deepEqual(t.lost, [], "nothing was lost: nobody is told");
  });

  it("tells each hole history could not fill, where it is, and counts it as missed", () => {
    const t = setup(1);
    t.order.remote(7, E, "r7");
    assert.deepEqual(
      t.fills.map(({ from, to }) => [from, to]),
      [[2, 6]],
    );
    t.fills[0]?.done([[5, "h5"]]);
    assert.deepEqual(t.offsets(), [5, 7]);
    assert.deepEqual(t.lost, [
      [4, E],
      [6, E],
    ]);
    assert.equal(t.missed(), 3 + 1);
  });

  it("treats a history that cannot be read as one hole", () => {
    const t = setup(0);
    t.order.remote(3, E, "r3");
    t.fills[0]?.done(null);
    assert.deepEqual(t.lost, [[2, E]]);
    assert.deepEqual(t.offsets(), [3]);
    assert.equal(t.missed(), 2);
  });

  it("looks in history for a stalled gap when told to (the timer); a late message is dropped", () => {
    const t = setup(1);
    t.order.settle(t.own("mine"), t.ok(3));
    assert.equal(t.order.stalled, true);
    t.order.unstall();
    t.fills[0]?.done([]);
    assert.deepEqual(t.delivered, [[3, "mine"]]);
    assert.equal(t.missed(), 1);
    t.order.remote(2, E, "late");
    assert.equal(t.order.stale, 1, "a late message below the last offset is dropped");
    assert.deepEqual(t.delivered, [[3, "mine"]]);
  });

  it("numbers failed publishes alone under a local epoch, tells subscribers once, and asks to rejoin", () => {
    const t = setup(7);
    const ok = t.own("ok");
    const failed = t.own("failed");
    const later = t.own("later");
    t.order.settle(failed, null);
    t.order.settle(later, null);
    assert.equal(t.delivered.length, 0, "the first one still waits for its reply");
    t.order.settle(ok, t.ok(8));
    assert.deepEqual(t.delivered, [
      [8, "ok"],
      [9, "failed"],
      [10, "later"],
    ]);
    assert.deepEqual(
      t.lost,
      [[8, "local-1"]],
      "subscribers move to the local numbering before its first message",
    );
    assert.equal(t.resyncs(), 1, "asked once");
    assert.deepEqual(
      t.done.map((r) => r.epoch),
      [E, "local-1", "local-1"],
    );
  });

  it("moves subscribers back into Redis' numbering at the rejoin after an outage", () => {
    const t = setup(5, "free");
    t.order.settle(t.own("alone"), null);
    assert.deepEqual(t.lost, [[5, "local-1"]]);
    assert.deepEqual(t.order.position(), { offset: 6, epoch: "local-1" });
    t.order.hold();
    t.order.remote(7, E, "r7");
    t.order.release(7, E, true);
    // The join read raised Redis' counter above what this host numbered alone; r7 came after it and goes out.
    assert.deepEqual(t.lost.at(-1), [6, E]);
    assert.deepEqual(t.offsets(), [6, 7]);
    assert.deepEqual(t.order.position(), { offset: 7, epoch: E });
  });

  it("on a rejoin in the same numbering reads what subscribers missed from history", () => {
    const t = setup(5);
    t.order.free();
    t.order.hold();
    t.order.release(9, E, true);
    assert.deepEqual(
      t.fills.map(({ from, to }) => [from, to]),
      [[6, 9]],
    );
    t.fills[0]?.done([
      [6, "h6"],
      [7, "h7"],
      [8, "h8"],
      [9, "h9"],
    ]);
    assert.deepEqual(t.offsets(), [6, 7, 8, 9]);
    assert.deepEqual(t.lost, []);
    assert.equal(t.missed(), 0);
  });

  it("a first join delivers what came after the join point and counts nothing before it", () => {
    const t = setup(3, "free");
    t.order.hold();
    t.order.remote(9, E, "r9");
    const p = t.own("mine");
    t.order.settle(p, t.ok(10));
    t.order.remote(11, E, "r11");
    assert.equal(t.delivered.length, 0);
    t.order.release(8, E, false);
    assert.deepEqual(t.offsets(), [9, 10, 11]);
    assert.equal(t.fills.length, 0, "a first join reads no history for what came before it");
    t.order.remote(13, E, "r13");
    assert.deepEqual(
      t.fills.map(({ from, to }) => [from, to]),
      [[12, 12]],
      "after the join gaps count",
    );
  });

  it("answers a repeated idempotency key without delivering it again", () => {
    const t = setup(4);
    t.order.settle(t.own("again"), { offset: 2, epoch: E, duplicate: true });
    assert.deepEqual(t.delivered, []);
    assert.deepEqual(t.done, [{ offset: 2, epoch: E, duplicate: true }]);
  });

  it("asks to rejoin when Redis' numbering changes under a live subscription", () => {
    const t = setup(40);
    t.order.remote(1, "new-epoch", "n1");
    assert.equal(t.resyncs(), 1);
    assert.deepEqual(t.delivered, [], "a message of another numbering waits for the rejoin");
    t.order.hold();
    t.order.release(1, "new-epoch", true);
    assert.deepEqual(t.lost, [[0, "new-epoch"]], "subscribers are placed just before its first message");
    assert.deepEqual(t.delivered, [[1, "n1"]]);
    assert.deepEqual(t.order.position(), { offset: 1, epoch: "new-epoch" });
  });

  it("keeps offsets increasing when Redis hands out one this host has passed", () => {
    const t = setup(20, "free");
    t.order.settle(t.own("x"), t.ok(3));
    assert.deepEqual(t.delivered, [[21, "x"]]);
    assert.deepEqual(t.done, [t.ok(21)]);
  });

  it("in the free phase delivers own messages across gaps without reading history", () => {
    const t = setup(0, "free");
    t.order.settle(t.own("x"), t.ok(40));
    assert.deepEqual(t.delivered, [[40, "x"]]);
    assert.equal(t.fills.length, 0);
  });

  it("reports the floors for the next script: highest known offset, and highest seen from Redis", () => {
    const t = setup(5);
    const p = t.own("x");
    t.order.remote(9, E, "r9");
    assert.equal(t.order.floor, 9);
    t.order.settle(p, t.ok(10));
    assert.equal(t.order.floor, 10);
    assert.equal(t.order.redisFloor, 10);
    assert.equal(t.order.knownEpoch, E);
  });
});
