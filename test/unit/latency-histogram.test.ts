import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  addSnapshot,
  emptySnapshot,
  LatencyHistogram,
  quantileMs,
  snapshotDelta,
} from "../../src/metrics/latency-histogram.js";

describe("latency histogram", () => {
  it("counts into fixed buckets and reads quantiles within the bucket", () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 90; i++) h.observe(0.003); // (2.5 ms, 5 ms]
    for (let i = 0; i < 10; i++) h.observe(0.2); // (100 ms, 250 ms]
    const s = h.snapshot();
    assert.equal(s.count, 100);
    const p50 = quantileMs(s, 0.5) as number;
    assert.ok(p50 > 2.5 && p50 <= 5, `p50 ${p50}`);
    const p99 = quantileMs(s, 0.99) as number;
    assert.ok(p99 > 100 && p99 <= 250, `p99 ${p99}`);
    assert.equal(quantileMs(emptySnapshot(), 0.5), null);
  });

  it("sums workers' snapshots and takes the difference between two reads", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    a.observe(0.001);
    b.observe(20);
    const total = emptySnapshot();
    addSnapshot(total, a.snapshot());
    addSnapshot(total, b.snapshot());
    assert.equal(total.count, 2);
    assert.equal(total.counts[total.counts.length - 1], 1, "over 10 s lands in +Inf");
    const before = a.snapshot();
    a.observe(0.05);
    assert.deepEqual(snapshotDelta(a.snapshot(), before).count, 1);
  });
});
