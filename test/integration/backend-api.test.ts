/**
 * Presence, webhooks and the server API on one host (memory): real server processes, a real webhook endpoint.
 * Across hosts with Redis: backend-redis.test.ts.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RawClient, SioClient } from "../helpers/clients.js";
import { metric, type ServerProcess, startServer, until } from "../helpers/server.js";
import { hs256, inSeconds } from "../helpers/tokens.js";
import { WebhookSink } from "../helpers/webhook-sink.js";

const JWT = "backend-api-jwt-secret";
const HOOK_SECRET = "backend-api-hook-secret";
const NAMESPACES = JSON.stringify({
  room: { presence: true, joinLeave: true },
  chat: { clientPublish: true },
});

async function api(server: ServerProcess, method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { error?: { code: string } },
  };
}

function raw(server: ServerProcess, user: string, exp = inSeconds(600)): Promise<RawClient> {
  return RawClient.open(`${server.wsUrl}?token=${hs256({ sub: user, exp }, JWT)}`);
}

function sio(server: ServerProcess, user: string): Promise<SioClient> {
  return SioClient.open(server.url, ["websocket"], {
    auth: { token: hs256({ sub: user, exp: inSeconds(600) }, JWT) },
  });
}

describe("presence, webhooks and the server API (one host)", () => {
  let server: ServerProcess;
  let sink: WebhookSink;
  const clients: { close(): void }[] = [];
  const track = <T extends { close(): void }>(c: T): T => {
    clients.push(c);
    return c;
  };
  const closeRaw = (c: RawClient) => ({ close: () => c.ws.close() });

  before(async () => {
    sink = await WebhookSink.start(HOOK_SECRET);
    server = await startServer([
      "--workers",
      "2",
      "--jwt-secret",
      JWT,
      "--namespaces",
      NAMESPACES,
      ...sink.serverArgs(),
    ]);
  });
  after(async () => {
    for (const c of clients) c.close();
    assert.equal(await server.stop(), 0);
    await sink.close();
  });

  it("counts clients and distinct users across workers and protocols; a user with two tabs joins and leaves once", async () => {
    const watcher = await raw(server, "watcher");
    track(closeRaw(watcher));
    assert.equal((await watcher.subscribe("room:1")).type, "ack");
    const alice1 = await raw(server, "alice");
    const alice2 = await raw(server, "alice");
    const bob = await raw(server, "bob");
    const carol = track(await sio(server, "carol"));
    for (const c of [alice1, alice2, bob]) assert.equal((await c.subscribe("room:1")).type, "ack");
    assert.equal((await carol.subscribe("room:1")).ok, true);

    const stats = await until(async () => {
      const r = await api(server, "GET", "/api/presence-stats?channel=room:1");
      return r.body.clients === 5 && r.body;
    });
    assert.deepEqual(stats, { channel: "room:1", clients: 5, users: 4 });
    const who = (await api(server, "GET", "/api/presence?channel=room:1")).body.clients as { user: string }[];
    assert.deepEqual(who.map((c) => c.user).sort(), ["alice", "alice", "bob", "carol", "watcher"]);

    // Join messages: one per user (alice once, whatever her tabs), the watcher's own included.
    const joins = () =>
      watcher.frames.filter((f) => f.type === "join").map((f) => (f.info as { user: string }).user);
    await until(() => joins().length >= 4);
    assert.deepEqual(joins().sort(), ["alice", "bob", "carol", "watcher"]);

    alice1.ws.close();
    await until(
      async () => (await api(server, "GET", "/api/presence-stats?channel=room:1")).body.clients === 4,
    );
    assert.equal(watcher.frames.filter((f) => f.type === "leave").length, 0, "alice still has a tab open");
    alice2.ws.close();
    await watcher.waitFor((f) => f.type === "leave" && (f.info as { user: string }).user === "alice");
    bob.ws.close();
    carol.close();
    const after = await until(async () => {
      const r = await api(server, "GET", "/api/presence-stats?channel=room:1");
      return r.body.clients === 1 && r.body;
    });
    assert.equal(after.users, 1);
    assert.equal(sink.of("presence_join", "room:1").filter((e) => e.user === "alice").length, 1);
    await until(() => sink.of("presence_leave", "room:1").filter((e) => e.user === "alice").length === 1);
  });

  it("sends occupied and vacated once per transition, retries a batch the backend failed, and signs every request", async () => {
    sink.failNext = 2;
    const a = await raw(server, "u-occ-a");
    const b = await raw(server, "u-occ-b");
    await a.subscribe("news:occ");
    await b.subscribe("news:occ");
    await until(() => sink.of("channel_occupied", "news:occ").length === 1, 20_000, "occupied after retries");
    a.ws.close();
    b.ws.close();
    await until(() => sink.of("channel_vacated", "news:occ").length === 1, 20_000, "vacated");
    await until(() => sink.of("connection_closed").filter((e) => e.user === "u-occ-a").length === 1);
    assert.equal(sink.of("channel_occupied", "news:occ").length, 1);
    assert.equal(sink.badSignatures, 0);
    assert.ok(sink.requests >= 4, "the two failed requests were sent again");
    assert.ok((await metric(server, "switchboard_webhook_requests_failed_total")) >= 2);
    assert.ok((await metric(server, "switchboard_webhook_events_total", 'outcome="sent"')) >= 3);
    const closed = sink.of("connection_closed").find((e) => e.user === "u-occ-a");
    assert.equal(closed?.reason, "client_closed");
    assert.equal(typeof closed?.client, "string");
  });

  it("broadcasts one message to many channels, and reads history with since, epoch and limit", async () => {
    const c = await raw(server, "u-bc");
    track(closeRaw(c));
    for (const ch of ["bc:1", "bc:2", "bc:3"]) await c.subscribe(ch);
    const r = await api(server, "POST", "/api/broadcast", {
      channels: ["bc:1", "bc:2", "bc:3"],
      data: { n: 1 },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.offsets, [1, 1, 1]);
    await until(() => c.messages().length === 3);
    assert.deepEqual(
      c
        .messages()
        .map((m) => m.channel)
        .sort(),
      ["bc:1", "bc:2", "bc:3"],
    );

    for (let i = 2; i <= 6; i++) await server.publish("bc:1", { n: i });
    const all = await api(server, "GET", "/api/history?channel=bc:1");
    assert.deepEqual(
      (all.body.messages as { data: { n: number } }[]).map((m) => m.data.n),
      [1, 2, 3, 4, 5, 6],
    );
    const epoch = all.body.epoch as string;
    const since = await api(server, "GET", `/api/history?channel=bc:1&since=2&epoch=${epoch}&limit=3`);
    assert.deepEqual(
      (since.body.messages as { offset: number }[]).map((m) => m.offset),
      [3, 4, 5],
    );
    const wrong = await api(server, "GET", "/api/history?channel=bc:1&since=2&epoch=nope");
    assert.equal((wrong.body.gap as { reason: string }).reason, "epoch_mismatch");
    assert.equal((await api(server, "GET", "/api/history?channel=bc:1&limit=0")).status, 400);
  });

  it("lists occupied channels with their subscribers, by pattern and page", async () => {
    const c = await raw(server, "u-list");
    track(closeRaw(c));
    const s = track(await sio(server, "u-list-sio"));
    for (let i = 0; i < 5; i++) await c.subscribe(`list:${i}`);
    await s.subscribe("list:0");
    const seen: { channel: string; subscribers: number }[] = [];
    let cursor: string | null = null;
    do {
      const q: string = `/api/channels?pattern=list:*&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await until(async () => {
        const r = await api(server, "GET", q);
        return r.status === 200 && r.body;
      });
      seen.push(...(page.channels as { channel: string; subscribers: number }[]));
      cursor = page.cursor as string | null;
    } while (cursor !== null);
    assert.deepEqual(seen.map((c) => c.channel).sort(), ["list:0", "list:1", "list:2", "list:3", "list:4"]);
    assert.equal(seen.find((c) => c.channel === "list:0")?.subscribers, 2);
  });

  it("disconnects, unsubscribes and refreshes a user's connections on every worker", async () => {
    const tabs = [await raw(server, "dave"), await raw(server, "dave")];
    const other = await raw(server, "erin");
    track(closeRaw(other));
    const dsio = await sio(server, "dave");
    const sioNotice = new Promise<Record<string, unknown>>((resolve) =>
      dsio.socket.once("server_disconnect", resolve),
    );
    const sioDisconnect = new Promise((resolve) => dsio.socket.once("disconnect", resolve));
    const r = await api(server, "POST", "/api/disconnect", {
      user: "dave",
      reconnect: false,
      reason: "banned",
    });
    assert.equal(r.status, 200);
    for (const t of tabs) {
      await until(() => t.closeCode !== null);
      assert.equal(t.closeCode, 4010);
      const notice = t.frames.find((f) => f.type === "disconnect");
      assert.deepEqual(notice, { type: "disconnect", code: 4010, reason: "banned", reconnect: false });
    }
    assert.equal(await sioDisconnect, "io server disconnect", "Socket.IO client told to stay away");
    assert.deepEqual(await sioNotice, { code: 4010, reason: "banned", reconnect: false });
    assert.equal(other.closeCode, null, "another user's connection stays");

    const f1 = await raw(server, "frank");
    track(closeRaw(f1));
    await f1.subscribe("chat:f");
    await other.subscribe("chat:f");
    assert.equal(
      (await api(server, "POST", "/api/unsubscribe", { user: "frank", channel: "chat:f" })).status,
      200,
    );
    await f1.waitFor((f) => f.type === "unsubscribed" && f.channel === "chat:f");
    await server.publish("chat:f", "after");
    await until(() => other.messages("chat:f").length === 1);
    assert.equal(f1.messages("chat:f").length, 0, "no message after the server unsubscribed it");

    const exp = inSeconds(3);
    const g = await raw(server, "gina", exp);
    track(closeRaw(g));
    assert.equal(
      (await api(server, "POST", "/api/refresh", { user: "gina", expireAt: inSeconds(600) })).status,
      200,
    );
    await until(() => Date.now() > exp * 1000 + 2500, 10_000, "past the first expiry");
    assert.equal(g.closeCode, null, "the refreshed connection is still open");
    assert.equal((await g.request({ type: "ping" })).type, "pong");
  });

  it("answers bad server API calls with a documented error and keeps serving", async () => {
    assert.equal((await api(server, "POST", "/api/disconnect", {})).body.error?.code, "bad_request");
    assert.equal((await api(server, "POST", "/api/disconnect", { user: "x", code: 1000 })).status, 400);
    assert.equal((await api(server, "POST", "/api/refresh", { user: "x", expireAt: 5 })).status, 400);
    assert.equal(
      (await api(server, "GET", "/api/presence-stats?channel=news")).body.error?.code,
      "bad_request",
    );
    assert.equal((await api(server, "POST", "/api/broadcast", { channels: [], data: 1 })).status, 400);
    assert.equal((await api(server, "GET", "/api/presence-stats?channel=room:1")).status, 200);
  });
});
