import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChannelOrder, type Phase } from "../../src/primary/relay-order.js";

/** A ChannelOrder with a sink that records what it was told. */
function setup(last = 0, phase: Phase = "synced") {
  const delivered: [number, string][] = [];
  const advanced: number[] = [];
  let missed = 0;
  const order = new ChannelOrder(
    {
      deliver: (offset, data) => delivered.push([offset, data]),
      advance: (offset) => advanced.push(offset),
      missed: (n) => {
        missed += n;
      },
    },
    last,
    phase,
  );
  const done: number[] = [];
  const own = (data: string) => order.own(data, (o) => done.push(o));
  return { order, delivered, advanced, done, own, missed: () => missed };
}

describe("ChannelOrder", () => {
  it("merges own replies and other hosts' messages in offset order", () => {
    const t = setup(10);
    const p = t.own("mine");
    t.order.remote(11, "r11");
    assert.equal(t.delivered.length, 0, "a pending own publish may come first: wait");
    t.order.echo(12);
    t.order.remote(13, "r13");
    t.order.settle(p, 12);
    assert.deepEqual(t.delivered, [
      [11, "r11"],
      [12, "mine"],
      [13, "r13"],
    ]);
    assert.deepEqual(t.done, [12]);
    assert.equal(t.missed(), 0);
  });

  it("delivers an own message before a later remote one that overtook its reply", () => {
    const t = setup(0);
    const p = t.own("mine");
    t.order.remote(2, "r2");
    t.order.settle(p, 1);
    assert.deepEqual(
      t.delivered.map(([o]) => o),
      [1, 2],
    );
  });

  it("holds an own message behind a gap until the subscription has passed it", () => {
    const t = setup(4);
    const p = t.own("mine");
    t.order.settle(p, 6);
    assert.equal(t.order.stalled, true, "offset 5 may still be on its way");
    assert.equal(t.delivered.length, 0);
    t.order.remote(5, "r5");
    assert.deepEqual(
      t.delivered.map(([o]) => o),
      [5, 6],
    );
    assert.equal(t.order.stalled, false);
  });

  it("skips a gap the echo proves permanent and counts it as missed", () => {
    const t = setup(4);
    const p = t.own("mine");
    t.order.settle(p, 8);
    t.order.echo(8);
    assert.deepEqual(t.delivered, [[8, "mine"]]);
    assert.equal(t.missed(), 3);
  });

  it("skips a stalled gap when told to (the timer), counting it", () => {
    const t = setup(1);
    t.order.settle(t.own("mine"), 3);
    assert.equal(t.order.stalled, true);
    t.order.unstall();
    assert.deepEqual(t.delivered, [[3, "mine"]]);
    assert.equal(t.missed(), 1);
    t.order.remote(2, "late");
    assert.equal(t.order.stale, 1, "a late message below the last offset is dropped");
    assert.deepEqual(t.delivered, [[3, "mine"]]);
  });

  it("counts gaps between remote messages", () => {
    const t = setup(0);
    t.order.remote(1, "a");
    t.order.remote(4, "b");
    assert.equal(t.missed(), 2);
    assert.deepEqual(
      t.delivered.map(([o]) => o),
      [1, 4],
    );
  });

  it("sequences failed publishes locally, after everything Redis sequenced before them", () => {
    const t = setup(7);
    const ok = t.own("ok");
    const failed = t.own("failed");
    const later = t.own("later");
    t.order.settle(failed, null);
    t.order.settle(later, null);
    assert.equal(t.delivered.length, 0, "the first one still waits for its reply");
    t.order.settle(ok, 8);
    assert.deepEqual(t.delivered, [
      [8, "ok"],
      [9, "failed"],
      [10, "later"],
    ]);
    assert.deepEqual(t.done, [8, 9, 10]);
  });

  it("keeps offsets increasing when Redis hands out one this host has passed", () => {
    const t = setup(20, "free");
    t.order.settle(t.own("x"), 3);
    assert.deepEqual(t.delivered, [[21, "x"]]);
    assert.deepEqual(t.done, [21]);
  });

  it("in the free phase delivers own messages across gaps without counting", () => {
    const t = setup(0, "free");
    t.order.settle(t.own("x"), 40);
    assert.deepEqual(t.delivered, [[40, "x"]]);
    assert.equal(t.missed(), 0);
  });

  it("holds everything while joining, then delivers what came after the join point", () => {
    const t = setup(3, "free");
    t.order.hold();
    t.order.remote(9, "r9");
    const p = t.own("mine");
    t.order.settle(p, 10);
    t.order.remote(11, "r11");
    assert.equal(t.delivered.length, 0);
    t.order.release(8, false);
    assert.deepEqual(
      t.delivered.map(([o]) => o),
      [9, 10, 11],
    );
    assert.equal(t.missed(), 0, "a first join counts nothing before its base");
    t.order.remote(13, "r13");
    assert.equal(t.missed(), 1, "after the join gaps count");
  });

  it("jumps to the base on a rejoin and counts what the subscribers missed", () => {
    const t = setup(5);
    t.order.free();
    t.order.hold();
    t.order.release(12, true);
    assert.deepEqual(t.advanced, [12]);
    assert.equal(t.order.last, 12);
    assert.equal(t.missed(), 7);
    t.order.remote(13, "r13");
    assert.equal(t.missed(), 7);
  });

  it("on a rejoin delivers what arrived before the base read instead of skipping it", () => {
    const t = setup(5);
    t.order.hold();
    t.order.remote(7, "r7");
    t.order.release(9, true);
    assert.deepEqual(t.delivered, [[7, "r7"]]);
    assert.equal(t.order.last, 9);
    assert.equal(t.missed(), 1 + 2, "6, then 8 and 9");
  });

  it("reports the floor for the next publish: the highest offset it knows of", () => {
    const t = setup(5);
    const p = t.own("x");
    t.order.remote(9, "r9");
    assert.equal(t.order.floor, 9);
    t.order.settle(p, 10);
    assert.equal(t.order.floor, 10);
  });
});
