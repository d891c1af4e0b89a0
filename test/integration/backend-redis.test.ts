/**
 * Presence, webhooks and the server API across two hosts that share a real Redis: occupancy transitions once for
 * the whole cluster, presence counts over both hosts (and after one dies), server API calls that reach the
 * other host's connections.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RawClient, SioClient } from "../helpers/clients.js";
import { startHosts, useRedisHosts } from "../helpers/redis-hosts.js";
import { type RedisServer, startRedis } from "../helpers/redis-server.js";
import { type ServerProcess, until } from "../helpers/server.js";
import { hs256, inSeconds } from "../helpers/tokens.js";
import { WebhookSink } from "../helpers/webhook-sink.js";

const JWT = "backend-redis-jwt";
const HOOK_SECRET = "backend-redis-hook";
const NAMESPACES = JSON.stringify({ room: { presence: true, joinLeave: true } });

function raw(host: ServerProcess, user: string, exp = inSeconds(600)): Promise<RawClient> {
  return RawClient.open(`${host.wsUrl}?token=${hs256({ sub: user, exp }, JWT)}`);
}

async function stats(host: ServerProcess, channel: string): Promise<{ clients: number; users: number }> {
  return (await (await fetch(`${host.url}/api/presence-stats?channel=${channel}`)).json()) as {
    clients: number;
    users: number;
  };
}

async function post(host: ServerProcess, path: string, body: unknown): Promise<number> {
  const res = await fetch(`${host.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

describe("presence, webhooks and the server API across hosts (Redis)", () => {
  let redis: RedisServer;
  let sink: WebhookSink;
  let hosts: ServerProcess[] = [];
  const open: RawClient[] = [];
  const keep = (c: RawClient) => {
    open.push(c);
    return c;
  };

  before(async () => {
    redis = await startRedis();
    sink = await WebhookSink.start(HOOK_SECRET);
    hosts = await startHosts(2, [
      "--redis",
      redis.url,
      "--jwt-secret",
      JWT,
      "--namespaces",
      NAMESPACES,
      ...sink.serverArgs(),
      "--presence-ttl",
      "2000",
    ]);
  });
  after(async () => {
    for (const c of open) c.ws.terminate();
    // The last test kills host 1 on purpose; host 0 must stop cleanly.
    const codes = await Promise.all(hosts.map((h) => h.stop()));
    await redis.destroy();
    await sink.close();
    assert.equal(codes[0], 0);
  });

  it("sends channel_occupied and channel_vacated once for the cluster, not once per host", async () => {
    const [a, b] = hosts as [ServerProcess, ServerProcess];
    const onA = await raw(a, "occ-a");
    await onA.subscribe("news:x");
    await until(() => sink.of("channel_occupied", "news:x").length === 1, 10_000, "occupied");
    const onB = await raw(b, "occ-b");
    await onB.subscribe("news:x");
    onA.ws.close();
    // B's subscriber is still there: A leaving must not vacate the channel (soketi#616).
    await until(() => sink.of("connection_closed").some((e) => e.user === "occ-a"), 10_000, "A's close seen");
    assert.equal(sink.of("channel_vacated", "news:x").length, 0);
    onB.ws.close();
    await until(() => sink.of("channel_vacated", "news:x").length === 1, 10_000, "vacated");
    assert.equal(sink.of("channel_occupied", "news:x").length, 1);
    assert.equal(sink.badSignatures, 0);
  });

  it("counts presence over both hosts, joins a user once, and reaches the other host's connections", async () => {
    const [a, b] = hosts as [ServerProcess, ServerProcess];
    const watcher = keep(await raw(a, "watcher"));
    await watcher.subscribe("room:1");
    keep(await raw(a, "alice")).subscribe("room:1");
    const aliceB = keep(await raw(b, "alice"));
    await aliceB.subscribe("room:1");
    const sio = await SioClient.open(b.url, ["websocket"], {
      auth: { token: hs256({ sub: "bob", exp: inSeconds(600) }, JWT) },
    });
    await sio.subscribe("room:1");
    const s = await until(async () => {
      const r = await stats(a, "room:1");
      return r.clients === 4 && r;
    });
    assert.equal(s.users, 3);
    assert.deepEqual(await stats(b, "room:1"), { channel: "room:1", clients: 4, users: 3 });
    const joins = () =>
      watcher.frames.filter((f) => f.type === "join" && (f.info as { user: string }).user === "alice");
    await until(() => sink.of("presence_join", "room:1").some((e) => e.user === "bob"));
    assert.equal(sink.of("presence_join", "room:1").filter((e) => e.user === "alice").length, 1);
    await until(() => joins().length === 1);

    // A broadcast through A reaches B's subscribers; a disconnect through A closes bob's connection on B.
    assert.equal(await post(a, "/api/broadcast", { channels: ["room:1", "room:2"], data: "hi" }), 200);
    await sio.waitForMessages("room:1", 1);
    const gone = new Promise((resolve) => sio.socket.once("disconnect", resolve));
    assert.equal(await post(a, "/api/disconnect", { user: "bob", reconnect: false }), 200);
    assert.equal(await gone, "io server disconnect");
    await until(async () => (await stats(a, "room:1")).users === 2);
    // An unsubscribe through B takes alice out of room:1 on A as well.
    assert.equal(await post(b, "/api/unsubscribe", { user: "alice", channel: "room:1" }), 200);
    await aliceB.waitFor((f) => f.type === "unsubscribed");
    await until(async () => (await stats(a, "room:1")).clients === 1);
    await watcher.waitFor((f) => f.type === "leave" && (f.info as { user: string }).user === "alice");
  });

  it("answers history, the channel list and a refresh from either host", async () => {
    const [a, b] = hosts as [ServerProcess, ServerProcess];
    const exp = inSeconds(3);
    const onB = keep(await raw(b, "hank", exp));
    await onB.subscribe("hist:1");
    for (let i = 1; i <= 3; i++) await a.publish("hist:1", { i });
    await until(() => onB.messages("hist:1").length === 3);
    const history = (await (await fetch(`${b.url}/api/history?channel=hist:1&since=1`)).json()) as {
      messages: { data: { i: number } }[];
    };
    assert.deepEqual(
      history.messages.map((m) => m.data.i),
      [2, 3],
    );
    const list = (await (await fetch(`${a.url}/api/channels?pattern=hist:*`)).json()) as {
      channels: { channel: string; subscribers: number }[];
    };
    assert.deepEqual(list.channels, [{ channel: "hist:1", subscribers: 1 }]);
    sink.failNext = 1;
    assert.equal(await post(a, "/api/refresh", { user: "hank", expireAt: inSeconds(900) }), 200);
    await until(() => Date.now() > exp * 1000 + 2500, 10_000, "past the token's own expiry");
    assert.equal(onB.closeCode, null, "refreshed through the other host");
    assert.equal((await onB.request({ type: "ping" })).type, "pong");
    onB.ws.close();
    // The batch that carries this close is refused once (500) and taken on the retry.
    await until(() => sink.of("connection_closed").some((e) => e.user === "hank"), 15_000, "retried close");
  });

  it("lets a dead host's clients leave once its entries expire", async () => {
    const [a, b] = hosts as [ServerProcess, ServerProcess];
    const carolB = await raw(b, "carol");
    await carolB.subscribe("room:dead");
    keep(await raw(a, "dan")).subscribe("room:dead");
    await until(async () => (await stats(a, "room:dead")).clients === 2);
    await b.stop("SIGKILL");
    // No leave was ever sent for carol: her host's entries expire after --presence-ttl and are reaped.
    const after = await until(
      async () => {
        const r = await stats(a, "room:dead");
        return r.clients === 1 && r;
      },
      20_000,
      "the dead host's client reaped",
    );
    assert.equal(after.users, 1);
    await until(() => sink.of("presence_leave", "room:dead").some((e) => e.user === "carol"), 10_000);
  });
});

describe("presence and occupancy on a Redis Cluster (3 masters)", () => {
  const fleet = useRedisHosts(2, {
    cluster: true,
    args: ["--jwt-secret", JWT, "--namespaces", NAMESPACES],
  });

  it("counts presence across hosts and lists channels whose keys live on different masters", async () => {
    const [a, b] = fleet.hosts as [ServerProcess, ServerProcess];
    for (let i = 0; i < 6; i++) {
      const onA = fleet.track(
        await RawClient.open(`${a.wsUrl}?token=${hs256({ sub: `u${i}`, exp: inSeconds(600) }, JWT)}`),
      );
      await onA.subscribe(`room:c${i}`);
      const onB = fleet.track(
        await RawClient.open(`${b.wsUrl}?token=${hs256({ sub: "shared", exp: inSeconds(600) }, JWT)}`),
      );
      await onB.subscribe(`room:c${i}`);
    }
    for (let i = 0; i < 6; i++) {
      const s = await until(async () => {
        const r = await stats(b, `room:c${i}`);
        return r.clients === 2 && r;
      });
      assert.equal(s.users, 2);
    }
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `${a.url}/api/channels?pattern=room:c*${cursor ? `&cursor=${cursor}` : ""}`;
      const page = (await (await fetch(q)).json()) as {
        channels: { channel: string }[];
        cursor: string | null;
      };
      names.push(...page.channels.map((c) => c.channel));
      cursor = page.cursor;
    } while (cursor !== null);
    assert.deepEqual(names.sort(), ["room:c0", "room:c1", "room:c2", "room:c3", "room:c4", "room:c5"]);
  });
});
