import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { FrameFlusher } from "../../src/worker/frame-flusher.js";

/** A connection that records when it was flushed. */
class Recorder {
  flushes: number[] = [];
  frames = 1;
  flush(): number {
    this.flushes.push(performance.now());
    return this.frames;
  }
}

function burnCpu(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // busy: the event loop does nothing else, as in a worker saturated with writes
  }
}

/** Resolves once `check` is true, polling every 10 ms; fails after `timeoutMs`. */
async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) assert.fail(`not ${what} within ${timeoutMs} ms`);
    await sleep(10);
  }
}

describe("FrameFlusher", () => {
  it("writes at once while the worker is idle, once per connection however many frames it got", async (t) => {
    const flusher = new FrameFlusher();
    t.after(() => flusher.close());
    const a = new Recorder();
    const b = new Recorder();
    flusher.mark(a);
    flusher.mark(a);
    flusher.mark(b);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(flusher.busy, false);
    assert.equal(a.flushes.length, 1);
    assert.equal(b.flushes.length, 1);
  });

  it("lets frames gather before writing while the worker is busy, and writes at once again when it is idle", async (t) => {
    const flusher = new FrameFlusher();
    t.after(() => flusher.close());
    burnCpu(250);
    await sleep(0); // the overdue sampler runs first and sees a loop that was busy
    assert.equal(flusher.busy, true);
    const a = new Recorder();
    const markedAt = performance.now();
    flusher.mark(a);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(a.flushes.length, 0, "a busy worker does not write in the same turn");
    flusher.mark(a);
    await sleep(100);
    assert.equal(a.flushes.length, 1, "both frames went out in one pass");
    assert.ok((a.flushes[0] as number) - markedAt >= 25, "the pass waited for frames to gather");
    // The 100 ms sampler sees the idle loop at its next sample; a loaded test machine may take longer.
    await waitUntil(() => !flusher.busy, 2000, "idle again");
    flusher.mark(a);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(a.flushes.length, 2);
  });

  it("writes at once while busy when its last pass already wrote several frames per connection", async (t) => {
    const flusher = new FrameFlusher();
    t.after(() => flusher.close());
    const a = new Recorder();
    a.frames = 3; // a busy channel: every connection had three frames queued
    burnCpu(250);
    await sleep(0);
    flusher.mark(a);
    await sleep(100);
    assert.equal(a.flushes.length, 1);
    burnCpu(250);
    await sleep(0);
    assert.equal(flusher.busy, true);
    flusher.mark(a);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(a.flushes.length, 2, "no wait: waiting would add latency and save no write");
  });
});
