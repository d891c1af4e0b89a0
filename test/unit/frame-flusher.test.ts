import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { FrameFlusher } from "../../src/worker/frame-flusher.js";

/** A connection that records when it was flushed. */
class Recorder {
  flushes: number[] = [];
  frames = 1;
  onFlush = () => {};
  flush(): number {
    this.flushes.push(performance.now());
    this.onFlush();
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
  it("writes at once while passes are short, once per connection however many frames it got", async (t) => {
    const flusher = new FrameFlusher();
    t.after(() => flusher.close());
    const a = new Recorder();
    const b = new Recorder();
    flusher.mark(a);
    flusher.mark(a);
    flusher.mark(b);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(a.flushes.length, 1);
    assert.equal(b.flushes.length, 1);
    assert.deepEqual([flusher.frames, flusher.writes], [2, 2]);
  });

  it("after a long pass lets frames gather before the next one, then writes them in one", async (t) => {
    const flusher = new FrameFlusher();
    t.after(() => flusher.close());
    const slow = new Recorder();
    slow.onFlush = () => burnCpu(60); // thousands of sockets' writes
    flusher.mark(slow);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(slow.flushes.length, 1);
    const a = new Recorder();
    flusher.mark(a);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(a.flushes.length, 0, "the pass after a long one is held back");
    flusher.mark(a);
    await waitUntil(() => a.flushes.length > 0, 5000, "written");
    assert.equal(a.flushes.length, 1, "both frames went out in one pass");
    // That pass was short: the next is not held back.
    flusher.mark(a);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(a.flushes.length, 2);
  });
});
