import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Frame, RawClient, SioClient } from "../helpers/clients.js";
import { getFresh } from "../helpers/http.js";
import { redisStatus, useRedisHosts } from "../helpers/redis-hosts.js";
import { redisCli } from "../helpers/redis-server.js";
import { metric, type ServerProcess, until } from "../helpers/server.js";

type Got = { offset: number; data: { p: string; n: number } };

/** Subscribers on each host, both protocols. */
type Subs = { host: number; raw: RawClient[]; sio: SioClient[] };

describe("cross-host relay through one Redis", () => {
  const fixture = useRedisHosts(3);
  const subs: Subs[] = [];

  const raw = async (host: ServerProcess) => fixture.track(await RawClient.open(host.wsUrl));
  const sio = async (host: ServerProcess) => fixture.track(await SioClient.open(host.url, ["websocket"]));

  it("reports the link on /health, /status and /metrics", async () => {
    for (const host of fixture.hosts) {
      const health = await getFresh(`${host.url}/health`);
      assert.equal(health.status, 200);
      assert.equal((health.body.redis as { state: string }).state, "up");
      const status = await redisStatus(host);
      assert.equal(status.state, "up");
      assert.equal(status.cluster, false);
      assert.equal(await metric(host, "switchboard_redis_link_up"), 1);
    }
  });

  it("delivers HTTP, raw and Socket.IO publishes from three hosts to every subscriber once, in one offset order", async () => {
    const channel = "chat:x";
    for (let h = 0; h < fixture.hosts.length; h++) {
      const host = fixture.hosts[h] as ServerProcess;
      const s: Subs = {
        host: h,
        raw: [await raw(host), await raw(host)],
        sio: [await sio(host), await sio(host)],
      };
      for (const c of s.raw) assert.equal((await c.subscribe(channel)).type, "ack");
      for (const c of s.sio) assert.equal((await c.subscribe(channel)).ok, true);
      subs.push(s);
    }
    const perPublisher = 40;
    const [h0, h1, h2] = fixture.hosts as [ServerProcess, ServerProcess, ServerProcess];
    const rawPublisher = await raw(h1);
    const sioPublisher = await sio(h2);
    const httpOffsets: number[] = [];
    await Promise.all([
      (async () => {
        for (let n = 0; n < perPublisher; n++)
          httpOffsets.push((await h0.publish(channel, { p: "http", n })).offset);
      })(),
      (async () => {
        const ids = Array.from({ length: perPublisher }, (_, n) =>
          rawPublisher.send({ type: "publish", channel, data: { p: "raw", n } }),
        );
        for (const id of ids)
          assert.equal((await rawPublisher.waitFor((f) => f.id === id, 10_000)).type, "ack");
      })(),
      Promise.all(
        Array.from({ length: perPublisher }, (_, n) =>
          sioPublisher.socket.timeout(10_000).emitWithAck("publish", channel, { p: "sio", n }),
        ),
      ).then((acks: { ok?: boolean }[]) => assert.ok(acks.every((a) => a.ok))),
    ]);
    const total = 3 * perPublisher;
    const sequences: Got[][] = [];
    for (const s of subs) {
      for (const c of s.raw) {
        const got = (await c.waitForMessages(channel, total, 10_000)) as (Frame & Got)[];
        sequences.push(got.map((f) => ({ offset: f.offset, data: f.data })));
      }
      for (const c of s.sio) {
        const got = await c.waitForMessages(channel, total, 10_000);
        sequences.push(got.map((m) => ({ offset: m.offset, data: m.data as Got["data"] })));
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const s of subs)
      for (const c of s.raw) assert.equal(c.messages(channel).length, total, "no duplicates");
    for (const s of subs) for (const c of s.sio) assert.equal(c.received.length, total, "no duplicates");

    const first = sequences[0] as Got[];
    const base = (first[0] as Got).offset;
    assert.deepEqual(
      first.map((g) => g.offset),
      Array.from({ length: total }, (_, i) => base + i),
      "offsets contiguous across hosts",
    );
    for (const seq of sequences) assert.deepEqual(seq, first, "every subscriber sees the same sequence");
    for (const p of ["http", "raw", "sio"]) {
      const ns = first.filter((g) => g.data.p === p).map((g) => g.data.n);
      assert.deepEqual(ns, [...Array(perPublisher).keys()], `${p} publisher's order kept`);
    }
    const httpSeen = first.filter((g) => g.data.p === "http").map((g) => g.offset);
    assert.deepEqual(httpOffsets, httpSeen, "the publish API returns the Redis-assigned offsets");

    for (const host of fixture.hosts) {
      assert.equal(await metric(host, "switchboard_redis_relayed_total"), perPublisher);
      assert.equal(await metric(host, "switchboard_redis_received_total"), 2 * perPublisher);
      assert.equal(await metric(host, "switchboard_redis_echoes_total"), perPublisher, "own echoes dropped");
      assert.equal(await metric(host, "switchboard_redis_unrelayed_total"), 0);
      assert.equal(await metric(host, "switchboard_redis_missed_total"), 0);
    }
  });

  it("subscribes in Redis once per host, and only to channels with local subscribers", async () => {
    const numsub = async (channel: string) =>
      Number(
        (await redisCli(fixture.redis.port, "PUBSUB", "NUMSUB", `switchboard:msg:{${channel}}`)).split(
          "\n",
        )[1],
      );
    assert.equal(await numsub("chat:x"), 3, "one subscription per host, not per worker or client");
    const [h0, h1] = fixture.hosts as [ServerProcess, ServerProcess];
    await h0.publish("quiet", { nobody: "listens" });
    assert.equal(await numsub("quiet"), 0);
    const solo = await raw(h1);
    await solo.subscribe("solo");
    assert.equal(await numsub("solo"), 1);
    assert.equal((await h0.publish("solo", 1)).offset, 1);
    assert.equal(((await solo.waitForMessages("solo", 1))[0] as Frame).offset, 1);
  });

  it("a subscribe acknowledged on one host receives what another host publishes right after", async () => {
    const [, h1, h2] = fixture.hosts as [ServerProcess, ServerProcess, ServerProcess];
    const c = await raw(h1);
    const s = await sio(h1);
    for (let i = 0; i < 10; i++) {
      const channel = `fresh:${i}`;
      assert.equal((await c.subscribe(channel)).type, "ack");
      assert.equal((await s.subscribe(channel)).ok, true);
      await h2.publish(channel, { i });
    }
    for (let i = 0; i < 10; i++) {
      assert.deepEqual(
        (await c.waitForMessages(`fresh:${i}`, 1, 3000)).map((f) => f.data),
        [{ i }],
      );
      assert.deepEqual(
        (await s.waitForMessages(`fresh:${i}`, 1, 3000)).map((m) => m.data),
        [{ i }],
      );
    }
  });

  it("resumes with since from the history of messages other hosts published", async () => {
    const h1 = fixture.hosts[1] as ServerProcess;
    const seen = (subs[1] as Subs).raw[0]?.messages("chat:x") as Frame[];
    const since = (seen[99] as Frame).offset as number;
    const c = await raw(h1);
    assert.equal((await c.subscribe("chat:x", since)).type, "ack");
    const resumed = await c.waitForMessages("chat:x", seen.length - 100);
    assert.deepEqual(resumed, seen.slice(100));
  });

  it("answers a resume with every message since its offset while another host publishes without pause", async () => {
    // The resume's history read races the subscription: messages published after Redis ran the read may be
    // delivered on this host before the read's reply is seen. The answer must still cover them.
    const [h0, h1] = fixture.hosts as [ServerProcess, ServerProcess];
    const channel = "chat:resume-race";
    const watch = await raw(h1);
    assert.equal((await watch.subscribe(channel)).type, "ack");
    let streaming = true;
    const publisher = (async () => {
      let n = 0;
      while (streaming) await Promise.all([0, 1, 2].map(() => h0.publish(channel, { p: "http", n: n++ })));
    })();
    try {
      await watch.waitForMessages(channel, 30, 10_000);
      const trimmed: string[] = [];
      for (let i = 0; i < 40; i++) {
        const since = watch.messages(channel).at(-1)?.offset as number;
        const c = await raw(h1);
        const reply = await c.subscribe(channel, since - 3);
        if (reply.type !== "ack") trimmed.push(`since ${since - 3}: ${reply.code} ${reply.message}`);
        else {
          const first = (await c.waitForMessages(channel, 1, 5000))[0] as Frame;
          if (first.offset !== since - 2) trimmed.push(`since ${since - 3}: first ${first.offset}`);
        }
        c.close();
      }
      assert.deepEqual(trimmed, [], "every resume got the messages after its offset");
    } finally {
      streaming = false;
      await publisher;
    }
  });

  it("leaves the Redis channel some seconds after the last subscriber on a host is gone", async () => {
    const s2 = subs[2] as Subs;
    for (const c of [...s2.raw, ...s2.sio]) c.close();
    const numsub = async () =>
      Number(
        (await redisCli(fixture.redis.port, "PUBSUB", "NUMSUB", "switchboard:msg:{chat:x}")).split("\n")[1],
      );
    await until(async () => (await numsub()) === 2, 10_000, "host2 to unsubscribe chat:x");
  });
});
