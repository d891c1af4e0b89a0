import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChannelHub } from "../../src/primary/channel-hub.js";

describe("ChannelHub", () => {
  it("assigns consecutive offsets per channel and routes only to interested workers", () => {
    const hub = new ChannelHub({ historySize: 10, historyTtlMs: 1000 });
    hub.subscribe(1, "a");
    hub.subscribe(2, "b");
    assert.deepEqual([...hub.publish("a", "1").workers], [1]);
    assert.equal(hub.publish("a", "2").offset, 2);
    assert.equal(hub.publish("b", "1").offset, 1);
    hub.unsubscribe(1, "a");
    assert.deepEqual([...hub.publish("a", "3").workers], []);
  });

  it("replays history after `since`, and reports a gap when history no longer reaches back", () => {
    const hub = new ChannelHub({ historySize: 3, historyTtlMs: 1000 });
    for (let i = 1; i <= 5; i++) hub.publish("h", String(i));
    assert.deepEqual(hub.replay("h", 3), {
      offset: 5,
      history: [
        [4, "4"],
        [5, "5"],
      ],
      gap: false,
    });
    assert.deepEqual(hub.replay("h", 1), {
      offset: 5,
      history: [
        [3, "3"],
        [4, "4"],
        [5, "5"],
      ],
      gap: true,
    });
    assert.deepEqual(hub.replay("h", 5), { offset: 5, history: [], gap: false });
    assert.equal(hub.replay("h", 9).gap, true, "an offset from the future (a restarted host) is a gap");
    assert.deepEqual(hub.replay("h", null), { offset: 5, history: null, gap: false });

    const partial = new ChannelHub({ historySize: 10, historyTtlMs: 1000 });
    for (let i = 1; i <= 3; i++) partial.publish("p", String(i));
    assert.deepEqual(partial.replay("p", 1).history, [
      [2, "2"],
      [3, "3"],
    ]);
    partial.append("p", 7, "7"); // messages 4–6 never reached this host: history restarts at 7
    assert.deepEqual(partial.replay("p", 5), { offset: 7, history: [[7, "7"]], gap: true });
  });

  it("sweeps idle channels nobody subscribes to after the TTL", () => {
    let now = 0;
    const hub = new ChannelHub({ historySize: 3, historyTtlMs: 1000, now: () => now });
    hub.publish("idle", "1");
    hub.publish("watched", "1");
    hub.subscribe(1, "watched");
    now = 2000;
    assert.equal(hub.sweep(), 1);
    assert.equal(hub.channelCount, 1);
    hub.removeWorker(1);
    assert.equal(hub.activeChannels(), 0);
  });
});
