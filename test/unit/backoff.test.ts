import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RestartBackoff } from "../../src/backoff.js";

describe("RestartBackoff", () => {
  it("doubles the delay with jitter up to the maximum", () => {
    const b = new RestartBackoff({ baseMs: 100, maxMs: 1000, random: () => 1 });
    const delays = [0, 1, 2, 3, 4, 5].map((i) => b.onCrash(1000 + i, 1000 + i));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    const low = new RestartBackoff({ baseMs: 100, random: () => 0 });
    assert.equal(low.onCrash(0, 0), 50, "jitter never goes below half");
  });

  it("resets after a worker stayed up for the stable period", () => {
    const b = new RestartBackoff({ baseMs: 100, stableMs: 30_000, random: () => 1 });
    b.onCrash(0, 0);
    b.onCrash(10, 5);
    assert.equal(b.onCrash(100_000, 50_000), 100);
  });

  it("detects a crash loop within the window and leaves it once crashes stop", () => {
    const b = new RestartBackoff({ crashLoopCount: 3, crashLoopWindowMs: 10_000 });
    b.onCrash(0, 0);
    b.onCrash(1000, 900);
    assert.equal(b.inCrashLoop(1000), false);
    b.onCrash(2000, 1900);
    assert.equal(b.inCrashLoop(2000), true);
    assert.equal(b.inCrashLoop(20_000), false);
  });
});
