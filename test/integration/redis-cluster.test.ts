import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Frame, RawClient, SioClient } from "../helpers/clients.js";
import { getFresh } from "../helpers/http.js";
import { redisStatus, useRedisHosts } from "../helpers/redis-hosts.js";
import { channelsOnEachNode, redisCli } from "../helpers/redis-server.js";
import { metric, type ServerProcess } from "../helpers/server.js";

type Data = { p: string; n: number };

describe("cross-host relay through a Redis Cluster with sharded pub/sub", () => {
  const fixture = useRedisHosts(2, { cluster: true });
  const { track } = fixture;

  it("connects to every master and reports the link up", async () => {
    for (const host of fixture.hosts) {
      const status = await redisStatus(host);
      assert.equal(status.state, "up");
      assert.equal(status.cluster, true);
      assert.equal(status.nodes.length, 3);
      assert.equal(((await getFresh(`${host.url}/health`)).body.redis as { state: string }).state, "up");
    }
  });

  it("spreads channels over every shard and delivers each message once, in offset order, on both hosts", async () => {
    const { cluster, hosts } = fixture;
    // Three channels per master, chosen by where their hash tag lands.
    const perNode = await channelsOnEachNode(cluster, 3, "chat:c");
    const channels = perNode.flat();
    const [a, b] = hosts as [ServerProcess, ServerProcess];
    const subscribers: (RawClient | SioClient)[] = [];
    for (const host of hosts) {
      const raw = track(await RawClient.open(host.wsUrl));
      const sio = track(await SioClient.open(host.url, ["websocket"]));
      for (const ch of channels) {
        assert.equal((await raw.subscribe(ch)).type, "ack");
        assert.equal((await sio.subscribe(ch)).ok, true);
      }
      subscribers.push(raw, sio);
    }

    // Redis itself shows the spread: every master carries its three shard channels, once per host.
    for (const [i, mine] of perNode.entries()) {
      const port = cluster.nodes[i]?.port as number;
      const listed = (await redisCli(port, "PUBSUB", "SHARDCHANNELS", "switchboard:msg:*"))
        .split("\n")
        .sort();
      assert.deepEqual(listed, mine.map((c) => `switchboard:msg:{${c}}`).sort(), `shard channels on ${port}`);
      for (const c of mine) {
        const numsub = await redisCli(port, "PUBSUB", "SHARDNUMSUB", `switchboard:msg:{${c}}`);
        assert.equal(Number(numsub.split("\n")[1]), 2, "one subscription per host");
      }
    }

    const perChannel = 10;
    const publisher = track(await RawClient.open(b.wsUrl));
    const batch = channels.flatMap((channel) =>
      Array.from({ length: perChannel }, (_, n) => ({ channel, data: { p: "http", n } })),
    );
    const [httpOffsets] = await Promise.all([
      fetch(`${a.url}/api/publish`, { method: "POST", body: JSON.stringify({ messages: batch }) })
        .then((r) => r.json() as Promise<{ offsets: number[] }>)
        .then((r) => r.offsets),
      (async () => {
        const ids = channels.flatMap((channel) =>
          Array.from({ length: perChannel }, (_, n) =>
            publisher.send({ type: "publish", channel, data: { p: "raw", n } }),
          ),
        );
        for (const id of ids) assert.equal((await publisher.waitFor((f) => f.id === id, 10_000)).type, "ack");
      })(),
    ]);
    assert.equal(httpOffsets.length, batch.length);

    for (const channel of channels) {
      const sequences: { offset: number; data: Data }[][] = [];
      for (const s of subscribers) {
        if (s instanceof RawClient) {
          const got = await s.waitForMessages(channel, 2 * perChannel, 10_000);
          sequences.push(got.map((f: Frame) => ({ offset: f.offset as number, data: f.data as Data })));
        } else {
          const got = await s.waitForMessages(channel, 2 * perChannel, 10_000);
          sequences.push(got.map((m) => ({ offset: m.offset, data: m.data as Data })));
        }
      }
      const first = sequences[0] as { offset: number; data: Data }[];
      assert.equal(first.length, 2 * perChannel, `${channel}: no duplicates`);
      const base = (first[0] as { offset: number }).offset;
      assert.deepEqual(
        first.map((g) => g.offset),
        Array.from({ length: 2 * perChannel }, (_, i) => base + i),
        `${channel}: contiguous offsets`,
      );
      for (const seq of sequences) assert.deepEqual(seq, first, `${channel}: same sequence everywhere`);
      for (const p of ["http", "raw"]) {
        assert.deepEqual(
          first.filter((g) => g.data.p === p).map((g) => g.data.n),
          [...Array(perChannel).keys()],
          `${channel}: ${p} order`,
        );
      }
    }
    for (const host of hosts) {
      assert.equal(await metric(host, "switchboard_redis_relayed_total"), channels.length * perChannel);
      assert.equal(await metric(host, "switchboard_redis_received_total"), channels.length * perChannel);
      assert.equal(await metric(host, "switchboard_redis_unrelayed_total"), 0);
      for (const node of (await redisStatus(host)).nodes)
        assert.ok(node.ready && node.channels >= 3, JSON.stringify(node));
    }
  });

  it("carries Socket.IO rooms and fetchSockets across hosts through the cluster", async () => {
    const [a, b] = fixture.hosts as [ServerProcess, ServerProcess];
    const onA = track(await SioClient.open(a.url, ["websocket"]));
    const onB = track(await SioClient.open(b.url, ["websocket"]));
    await onA.subscribe("room:c");
    await onB.subscribe("room:c");
    const presence = (await (await fetch(`${a.url}/api/presence?channel=room:c`)).json()) as {
      sockets: string[];
    };
    assert.deepEqual(presence.sockets.sort(), [onA.socket.id, onB.socket.id].sort());
    const heard = new Promise<unknown[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the emit never reached the other host")), 10_000);
      onB.socket.once("note", (...args: unknown[]) => {
        clearTimeout(timer);
        resolve(args);
      });
    });
    const res = await fetch(`${a.url}/api/emit`, {
      method: "POST",
      body: JSON.stringify({ channel: "room:c", event: "note", args: [7] }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await heard, [7]);
  });
});
