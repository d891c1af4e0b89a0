import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RawClient, SioClient } from "../helpers/clients.js";
import { useRedisHosts } from "../helpers/redis-hosts.js";
import { metric, type ServerProcess, sleep, until } from "../helpers/server.js";

type Presence = { channel: string; raw: number; socketio: number; sockets: string[] };

describe("Socket.IO's own cross-node features across two hosts", () => {
  const fixture = useRedisHosts(2);
  const { track } = fixture;

  const presence = async (host: ServerProcess, channel: string): Promise<Presence> =>
    (await (await fetch(`${host.url}/api/presence?channel=${channel}`)).json()) as Presence;

  it("/api/emit to a channel from one host reaches its Socket.IO subscribers on every host, once", async () => {
    const [a, b] = fixture.hosts as [ServerProcess, ServerProcess];
    const members = [
      track(await SioClient.open(a.url, ["websocket"])),
      track(await SioClient.open(b.url, ["websocket"])),
      track(await SioClient.open(b.url, ["polling"])),
    ];
    const outsider = track(await SioClient.open(b.url, ["websocket"]));
    for (const m of members) assert.equal((await m.subscribe("room:1")).ok, true);
    const heard = members.map(() => [] as unknown[][]);
    members.forEach((m, i) => {
      m.socket.on("note", (...args: unknown[]) => heard[i]?.push(args));
    });
    const outsiderHeard: unknown[] = [];
    outsider.socket.on("note", (...args: unknown[]) => outsiderHeard.push(args));
    for (const [host, n] of [
      [a, 1],
      [b, 2],
    ] as const) {
      const res = await fetch(`${host.url}/api/emit`, {
        method: "POST",
        body: JSON.stringify({ channel: "room:1", event: "note", args: ["hi", { n }] }),
      });
      assert.deepEqual(await res.json(), { ok: true });
    }
    await until(() => heard.every((h) => h.length === 2), 5000, "every member to hear both emits");
    await sleep(200);
    for (const h of heard) {
      assert.equal(h.length, 2, "once each");
      assert.deepEqual(
        h.map((args) => args[1]).sort((x, y) => (x as { n: number }).n - (y as { n: number }).n),
        [{ n: 1 }, { n: 2 }],
      );
    }
    assert.deepEqual(outsiderHeard, []);
  });

  it("fetchSockets and serverSideEmit see every host (GET /api/presence)", async () => {
    const [a, b] = fixture.hosts as [ServerProcess, ServerProcess];
    const sioA = track(await SioClient.open(a.url, ["websocket"]));
    const sioB = track(await SioClient.open(b.url, ["websocket"]));
    const rawA = track(await RawClient.open(a.wsUrl));
    const rawB1 = track(await RawClient.open(b.wsUrl));
    const rawB2 = track(await RawClient.open(b.wsUrl));
    for (const s of [sioA, sioB]) await s.subscribe("lobby");
    for (const r of [rawA, rawB1, rawB2]) await r.subscribe("lobby");
    for (const host of fixture.hosts) {
      const p = await presence(host, "lobby");
      assert.equal(p.socketio, 2);
      assert.deepEqual(p.sockets.sort(), [sioA.socket.id, sioB.socket.id].sort());
      assert.equal(p.raw, 3, "raw counts from every worker of every host (serverSideEmitWithAck)");
    }
    sioB.close();
    rawB2.close();
    await until(async () => (await presence(a, "lobby")).socketio === 1, 5000, "presence to drop a socket");
    assert.deepEqual(await presence(a, "lobby"), {
      channel: "lobby",
      raw: 2,
      socketio: 1,
      sockets: [sioA.socket.id],
    });
    assert.ok((await metric(a, "switchboard_redis_sio_received_total")) > 0);
    assert.ok((await metric(b, "switchboard_redis_sio_relayed_total")) > 0);
  });
});
