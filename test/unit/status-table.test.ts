import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  adminBase,
  adminTarget,
  counterFromMetrics,
  passwordFrom,
  UsageError,
} from "../../src/status/command.js";
import {
  columns,
  EXIT_DEGRADED,
  EXIT_READY,
  formatCount,
  formatUptime,
  healthOf,
  ratesBetween,
  statusLines,
} from "../../src/status/table.js";

function worker(slot: number, state: string, raw: number, sio: number, extra: Record<string, unknown> = {}) {
  return {
    id: slot + 1,
    pid: 1000 + slot,
    slot,
    state,
    stats: {
      rawConnections: raw,
      sioConnections: sio,
      delivered: 0,
      socketWrites: 0,
      slowConsumers: 0,
      errors: {},
      hookCalls: {},
      rssBytes: 64 * 1048576,
      at: 0,
    },
    ...extra,
  };
}

/** A /status document as the server answers it (trimmed to what the table reads). */
function status(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    instance: "blue-1",
    phase: "running",
    pid: 42,
    uptimeSeconds: 3725,
    crashLoop: false,
    restarts: 3,
    workers: [worker(0, "ready", 10, 2), worker(1, "ready", 5, 1)],
    totals: {
      delivered: 1234567,
      socketWrites: 10,
      slowConsumers: 4,
      errors: { rate_limited: 7, bad_request: 2, forbidden: 0 },
      hookCalls: {},
    },
    ...over,
  };
}

/** The cells of the worker row whose first cell is `slot`. */
function row(lines: string[], slot: string): string[] {
  const line = lines.find((l) => l.split(/\s+/)[0] === slot);
  assert.ok(line, `no row ${slot} in\n${lines.join("\n")}`);
  return line.trim().split(/\s{2,}/);
}

describe("healthOf", () => {
  it("is ready when running with every worker ready and no Redis", () => {
    assert.deepEqual(healthOf(status()), { code: EXIT_READY, reasons: [] });
  });
  it("is ready with the Redis link up", () => {
    assert.equal(healthOf(status({ redis: { state: "up", since: "x" } })).code, EXIT_READY);
  });
  it("is degraded, with every reason, for a crash loop, Redis down, a worker not ready", () => {
    const h = healthOf(
      status({
        crashLoop: true,
        redis: { state: "down" },
        workers: [worker(0, "ready", 0, 0), worker(1, "unresponsive", 0, 0)],
      }),
    );
    assert.equal(h.code, EXIT_DEGRADED);
    assert.deepEqual(h.reasons, ["crash loop", "redis down", "worker 1 unresponsive"]);
  });
  it("is degraded while draining, starting, or with no worker", () => {
    assert.deepEqual(healthOf(status({ phase: "draining" })).reasons, ["draining"]);
    assert.deepEqual(healthOf(status({ phase: "starting" })).reasons, ["phase starting"]);
    assert.deepEqual(healthOf(status({ workers: [] })).reasons, ["no ready worker"]);
    assert.equal(healthOf(null).code, EXIT_DEGRADED);
    assert.equal(healthOf(status({ redis: { state: "connecting" } })).code, EXIT_DEGRADED);
  });
});

describe("statusLines", () => {
  it("shows the header, one row per worker, totals and errors by code", () => {
    const lines = statusLines({ status: status({ version: "0.2.0" }), published: 99 });
    assert.match(lines[0] ?? "", /instance blue-1 +phase running +uptime 1h 2m 5s +version 0\.2\.0/);
    assert.match(lines[1] ?? "", /crash loop no +restarts 3/);
    assert.equal(lines[2], "health ready");
    assert.deepEqual(row(lines, "slot"), ["slot", "pid", "state", "raw", "socket.io", "RSS MiB"]);
    assert.deepEqual(row(lines, "0"), ["0", "1000", "ready", "10", "2", "64.0"]);
    assert.deepEqual(row(lines, "1"), ["1", "1001", "ready", "5", "1", "64.0"]);
    assert.deepEqual(row(lines, "total"), ["total", "2 workers", "15", "3", "128.0"]);
    assert.ok(lines.includes("published 99   deliveries 1,234,567   slow consumers 4"), lines.join("\n"));
    // Largest first; codes that never happened are left out.
    assert.ok(lines.includes("errors rate_limited 7   bad_request 2"), lines.join("\n"));
    assert.ok(!lines.some((l) => l.includes("published/s")), "no rate line without --watch");
  });

  it("prefers the published count /status gives over the one read elsewhere", () => {
    const s = status();
    (s.totals as Record<string, unknown>).published = 12;
    assert.ok(statusLines({ status: s, published: 99 }).some((l) => l.startsWith("published 12 ")));
    assert.ok(statusLines({ status: status() }).some((l) => l.startsWith("published — ")));
  });

  it("shows Redis, fan-out and event-loop figures only when the server reports them", () => {
    const plain = statusLines({ status: status() });
    assert.ok(!plain.some((l) => /redis|fan-out|loop lag/.test(l)), plain.join("\n"));
    const rich = statusLines({
      status: status({
        redis: { state: "down", since: "2026-01-01T00:00:00.000Z" },
        fanout: { p50Ms: 1.25, p99Ms: 140 },
        workers: [
          worker(0, "ready", 1, 0, { eventLoop: { lagP99Ms: 12.34, utilization: 0.456 } }),
          // Where the worker's own stats carry it.
          {
            ...worker(1, "starting", 0, 0),
            stats: { ...worker(1, "starting", 0, 0).stats, eventLoop: { lagP99Ms: 3, utilization: 0.1 } },
          },
          { id: 9, pid: 1009, slot: 2, state: "starting", stats: null },
        ],
      }),
    });
    assert.match(rich[1] ?? "", /redis down since 2026-01-01T00:00:00\.000Z +fan-out p50 1\.3 ms p99 140 ms/);
    assert.equal(rich[2], "health DEGRADED: redis down, worker 1 starting, worker 2 starting");
    assert.deepEqual(row(rich, "slot").slice(-2), ["loop lag p99", "loop util"]);
    assert.deepEqual(row(rich, "0"), ["0", "1000", "ready", "1", "0", "64.0", "12.3 ms", "46%"]);
    assert.deepEqual(row(rich, "1").slice(-2), ["3.0 ms", "10%"]);
    assert.deepEqual(row(rich, "2"), ["2", "1009", "starting", "—", "—", "—", "—", "—"]);
  });

  it("shows — for rates on the first --watch frame, then the figures", () => {
    assert.ok(statusLines({ status: status(), rates: null }).includes("published/s —   deliveries/s —"));
    const lines = statusLines({ status: status(), rates: { publishedPerSec: 2.5, deliveriesPerSec: 25000 } });
    assert.ok(lines.includes("published/s 2.5   deliveries/s 25,000"), lines.join("\n"));
  });

  it("never fails on a document missing what it expects", () => {
    for (const s of [{}, null, "x", { workers: "no", totals: 3 }, { workers: [null, 1] }]) {
      const lines = statusLines({ status: s });
      assert.match(lines[0] ?? "", /^Switchboard {2}instance — +phase — +uptime —/);
    }
  });

  it("shows webhook counts when the server sends webhooks", () => {
    const lines = statusLines({ status: status({ webhooks: { queued: 3, sent: 10, dropped: 1 } }) });
    assert.ok(lines.includes("webhooks queued 3   sent 10   dropped 1"), lines.join("\n"));
  });
});

describe("helpers", () => {
  it("rates from two reads; none when a counter went back (a restart) or is unknown", () => {
    assert.deepEqual(ratesBetween({ published: 10, delivered: 100 }, { published: 30, delivered: 500 }, 2), {
      publishedPerSec: 10,
      deliveriesPerSec: 200,
    });
    assert.deepEqual(ratesBetween({ published: 10, delivered: 100 }, { published: null, delivered: 5 }, 1), {
      publishedPerSec: null,
      deliveriesPerSec: null,
    });
    assert.equal(ratesBetween({ published: 1, delivered: 1 }, { published: 2, delivered: 2 }, 0), null);
  });
  it("formats uptime, counts and columns", () => {
    assert.equal(formatUptime(59), "59s");
    assert.equal(formatUptime(61), "1m 1s");
    assert.equal(formatUptime(90_061), "1d 1h 1m");
    assert.equal(formatCount(1234), "1,234");
    assert.equal(formatCount(null), "—");
    assert.deepEqual(
      columns(
        [
          ["a", "1"],
          ["bbb", "22"],
        ],
        1,
      ),
      ["a     1", "bbb  22"],
    );
  });
  it("reads the admin URL in its usual spellings", () => {
    assert.equal(adminBase("http://127.0.0.1:9090"), "http://127.0.0.1:9090");
    assert.equal(adminBase("http://127.0.0.1:9090/status"), "http://127.0.0.1:9090");
    assert.equal(adminBase("127.0.0.1:9091/"), "http://127.0.0.1:9091");
    assert.equal(adminBase("https://ops.example/sb/status"), "https://ops.example/sb");
    assert.throws(() => adminBase("ftp://x"), UsageError);
    assert.throws(() => adminBase("http://"), UsageError);
  });
  it("takes the admin password from the flag, the file, the environment or the URL", () => {
    assert.deepEqual(adminTarget("http://admin:s%40cret@10.0.0.5:9090/status"), {
      base: "http://10.0.0.5:9090",
      password: "s@cret",
    });
    assert.equal(adminTarget("http://10.0.0.5:9090").password, null);
    assert.equal(passwordFrom("flag", undefined, { ADMIN_PASSWORD: "env" }), "flag");
    assert.equal(passwordFrom(undefined, undefined, { ADMIN_PASSWORD: "env" }), "env");
    assert.equal(passwordFrom(undefined, undefined, {}), null);
    assert.ok(passwordFrom(undefined, "/nonexistent/admin-password", {}) instanceof Error);
  });
  it("sums a counter's series from Prometheus text", () => {
    const text = [
      "# TYPE switchboard_published_total counter",
      'switchboard_published_total{instance="a"} 7',
      "switchboard_published_totalx 100",
    ].join("\n");
    assert.equal(counterFromMetrics(text, "switchboard_published_total"), 7);
    assert.equal(counterFromMetrics("", "switchboard_published_total"), null);
  });
});
