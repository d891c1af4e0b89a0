import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RawClient } from "../helpers/clients.js";
import { type ServerProcess, startServer, until } from "../helpers/server.js";

describe("admin port: password, status figures, channel search", () => {
  let server: ServerProcess;
  let admin: string;
  const bearer = { authorization: "Bearer s3cret-admin" };
  before(async () => {
    server = await startServer(["--workers", "2", "--admin-password", "s3cret-admin"]);
    admin = `http://127.0.0.1:${server.adminPort}`;
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it("asks every route for the password (Basic with any user, or Bearer)", async () => {
    for (const path of ["/", "/metrics", "/status", "/feed", "/channels"]) {
      const res = await fetch(`${admin}${path}`);
      await res.arrayBuffer();
      assert.equal(res.status, 401, path);
      assert.match(res.headers.get("www-authenticate") ?? "", /Basic/);
    }
    const basic = { authorization: `Basic ${Buffer.from("ops:s3cret-admin").toString("base64")}` };
    assert.equal((await fetch(`${admin}/metrics`, { headers: basic })).status, 200);
    const wrong = { authorization: `Basic ${Buffer.from("ops:nope").toString("base64")}` };
    assert.equal((await fetch(`${admin}/metrics`, { headers: wrong })).status, 401);
  });

  it("reports fan-out latency and event-loop figures, and finds channels by subscribers and rate", async () => {
    const clients = await Promise.all([1, 2, 3].map(() => RawClient.open(server.wsUrl)));
    for (const c of clients) await c.subscribe("admin:busy");
    await clients[0]?.subscribe("admin:quiet");
    const status = await until(
      async () => {
        await server.publish("admin:busy", "x");
        const s = (await (await fetch(`${admin}/status`, { headers: bearer })).json()) as {
          fanout?: { p99Ms: number | null };
          workers: { stats: { eventLoop?: { utilization: number } } | null }[];
        };
        return s.fanout?.p99Ms != null && s;
      },
      20_000,
      "a fan-out figure",
    );
    assert.ok(status.workers.every((w) => typeof w.stats?.eventLoop?.utilization === "number"));
    const found = await until(
      async () => {
        const r = (await (await fetch(`${admin}/channels?q=admin:`, { headers: bearer })).json()) as {
          bySubscribers: { channel: string; subscribers: number }[];
          byRate: { channel: string; perSec: number }[];
        };
        await server.publish("admin:busy", "y");
        return r.byRate.length > 0 && r;
      },
      30_000,
      "a rate for the busy channel",
    );
    assert.deepEqual(
      found.bySubscribers.map((c) => [c.channel, c.subscribers]),
      [
        ["admin:busy", 3],
        ["admin:quiet", 1],
      ],
    );
    assert.equal(found.byRate[0]?.channel, "admin:busy");
    const metrics = await (await fetch(`${admin}/metrics`, { headers: bearer })).text();
    assert.match(metrics, /switchboard_fanout_latency_seconds_count\{instance="default"\} [1-9]/);
    assert.match(metrics, /switchboard_event_loop_utilization\{worker="\d+",instance="default"\}/);
    for (const c of clients) c.ws.close();
  });
});
