import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, isRetryable, randomKey, withToken } from "../../src/client/index.js";

describe("client backoffDelay", () => {
  it("grows as min × 2^attempt from attempt 0 and stops at the maximum", () => {
    const top = [0, 1, 2, 3, 4, 5, 6, 7, 10, 50, 2000].map((a) => backoffDelay(a, 500, 20_000, () => 1));
    assert.deepEqual(top, [500, 1000, 2000, 4000, 8000, 16_000, 20_000, 20_000, 20_000, 20_000, 20_000]);
  });

  it("is full jitter: random() scales the whole window, down to 0", () => {
    assert.equal(
      backoffDelay(0, 500, 20_000, () => 0),
      0,
    );
    assert.equal(
      backoffDelay(3, 500, 20_000, () => 0.25),
      1000,
    );
    assert.equal(
      backoffDelay(9, 500, 20_000, () => 0.5),
      10_000,
    );
  });

  it("stays within [0, ceiling) for Math.random over many draws", () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(20_000, 500 * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(attempt, 500, 20_000, Math.random);
        assert.ok(d >= 0 && d < ceiling, `attempt ${attempt}: ${d} outside [0, ${ceiling})`);
      }
    }
  });
});

describe("client withToken", () => {
  it("appends ?token= or &token=, encoded, before a fragment", () => {
    assert.equal(withToken("ws://h/ws", "a b"), "ws://h/ws?token=a%20b");
    assert.equal(withToken("ws://h/ws?x=1", "t"), "ws://h/ws?x=1&token=t");
    assert.equal(withToken("ws://h/ws?", "t"), "ws://h/ws?token=t");
    assert.equal(withToken("ws://h/ws#f", "t"), "ws://h/ws?token=t#f");
    assert.equal(withToken("ws://h/ws", undefined), "ws://h/ws");
    assert.equal(withToken("ws://h/ws", ""), "ws://h/ws");
  });
});

describe("client randomKey and retryable codes", () => {
  it("makes 22 URL-safe characters by default, different each time", () => {
    const keys = new Set(Array.from({ length: 1000 }, () => randomKey()));
    assert.equal(keys.size, 1000);
    for (const k of keys) assert.match(k, /^[A-Za-z0-9_-]{22}$/);
    assert.equal(randomKey(40).length, 40);
  });

  it("retries only unavailable, rate_limited and internal", () => {
    assert.deepEqual(
      ["unavailable", "rate_limited", "internal", "forbidden", "bad_request", "history_gap"].map(isRetryable),
      [true, true, true, false, false, false],
    );
  });
});
