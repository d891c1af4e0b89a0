import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BusSink } from "../../src/bus/bus.js";
import { ENTRY_OVERHEAD_BYTES } from "../../src/bus/history-ring.js";
import { MemoryBus } from "../../src/bus/memory-bus.js";
import { loadConfig } from "../../src/config.js";
import { Namespaces } from "../../src/namespaces.js";

/** What the bus-contract suite cannot see from outside: memory bounds, forgetting and the clock. */
function setup(o: { maxHistoryBytes?: number; namespaces?: object; idempotencyWindowMs?: number } = {}) {
  let now = 1_000_000;
  const delivered: [string, number][] = [];
  const sink: BusSink = { deliver: (channel, offset) => void delivered.push([channel, offset]), lost() {} };
  const config = loadConfig({ env: { NAMESPACES: JSON.stringify(o.namespaces ?? {}) } });
  const bus = new MemoryBus(sink, {
    namespaces: new Namespaces(config),
    maxHistoryBytes: o.maxHistoryBytes ?? 1024 * 1024,
    idempotencyWindowMs: o.idempotencyWindowMs ?? 60_000,
    now: () => now,
  });
  const publish = (channel: string, data = '"x"', key: string | null = null) => {
    let result = { offset: 0, epoch: "", duplicate: false };
    bus.publish([{ channel, dataJson: data, idempotencyKey: key }], ([r]) => {
      result = r as typeof result;
    });
    return result;
  };
  const join = (channel: string, since?: number, epoch?: string) => {
    let reply: unknown;
    bus.join(channel, since === undefined ? null : { since, epoch: epoch ?? null }, (r) => {
      reply = r;
    });
    return reply as import("../../src/bus/bus.js").JoinReply;
  };
  return { bus, publish, join, delivered, advance: (ms: number) => (now += ms) };
}

describe("MemoryBus", () => {
  it("holds at most --history-max-bytes of history, dropping the channels published to longest ago first", () => {
    const data = JSON.stringify("x".repeat(1000));
    const perMessage = ENTRY_OVERHEAD_BYTES + data.length;
    const t = setup({ maxHistoryBytes: perMessage * 25 });
    const first = t.publish("chat:0", data);
    for (let c = 0; c < 10; c++) for (let i = c === 0 ? 1 : 0; i < 5; i++) t.publish(`chat:${c}`, data);
    const s = t.bus.stats();
    assert.ok(s.historyBytes <= perMessage * 25, `${s.historyBytes} bytes held`);
    assert.equal(s.historyMessages, 25);
    assert.equal(s.historyEvicted, 25);
    assert.equal(s.channels, 5, "channels without subscribers whose history was dropped are forgotten");
    assert.equal(t.join("chat:9", 0).recovered, true, "the newest channels keep theirs");
    const old = t.join("chat:0", 2, first.epoch);
    assert.equal(old.gap?.reason, "epoch_mismatch", "a forgotten channel starts a new numbering");
  });

  it("trims the oldest messages of a single channel that alone exceeds the cap", () => {
    const data = JSON.stringify("y".repeat(500));
    const t = setup({ maxHistoryBytes: (ENTRY_OVERHEAD_BYTES + data.length) * 3 });
    for (let i = 0; i < 10; i++) t.publish("big", data);
    t.bus.interest("big", true);
    const reply = t.join("big", 0);
    assert.equal(reply.gap?.reason, "history_trimmed");
    assert.deepEqual(
      reply.history.map(([o]) => o),
      [8, 9, 10],
    );
  });

  it("drops history after its namespace's TTL and forgets channels nobody wants", () => {
    const t = setup({ namespaces: { short: { historyTtlMs: 1000 } } });
    t.publish("short:a");
    t.publish("long");
    t.bus.interest("short:b", true);
    t.publish("short:b");
    t.advance(1500);
    t.bus.sweep();
    assert.equal(t.bus.stats().channels, 2, "long keeps its history; short:b is still subscribed");
    assert.equal(t.join("short:b", 0).gap?.reason, "history_trimmed");
    assert.equal(t.join("long", 0).recovered, true);
  });

  it("forgets a channel without history the moment its last subscriber leaves, and keeps its epoch if it was quiet", () => {
    const t = setup();
    t.bus.interest("quiet", true);
    const epoch = t.join("quiet").epoch;
    t.bus.interest("quiet", false);
    assert.equal(t.bus.stats().channels, 0);
    t.bus.interest("quiet", true);
    const again = t.join("quiet", 0, epoch);
    assert.equal(again.recovered, true, "nothing was ever numbered: the resume holds");
  });

  it("keeps no history for a namespace with historySize 0", () => {
    const t = setup({ namespaces: { live: { historySize: 0 } } });
    t.bus.interest("live:x", true);
    const { epoch } = t.publish("live:x");
    t.publish("live:x");
    assert.equal(t.bus.stats().historyMessages, 0);
    assert.equal(t.join("live:x", 1, epoch).gap?.reason, "history_trimmed");
  });

  it("answers a repeated idempotency key within the window only", () => {
    const t = setup({ idempotencyWindowMs: 1000 });
    const first = t.publish("c", '"a"', "k");
    assert.deepEqual(t.publish("c", '"a"', "k"), { ...first, duplicate: true });
    assert.equal(t.publish("other", '"a"', "k").duplicate, false, "keys are per channel");
    t.advance(1001);
    assert.equal(t.publish("c", '"a"', "k").duplicate, false);
    assert.equal(t.delivered.filter(([c]) => c === "c").length, 2);
    assert.equal(t.bus.stats().duplicates, 1);
  });

  it("gives every process its own epochs (a restart cannot be resumed across)", () => {
    const a = setup();
    const b = setup();
    assert.notEqual(a.publish("n").epoch, b.publish("n").epoch);
  });
});
