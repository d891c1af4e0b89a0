import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Frame, RawClient, silentLosses } from "../helpers/clients.js";
import { redisStatus, useRedisHosts } from "../helpers/redis-hosts.js";
import { channelsOnEachNode, type RedisServer } from "../helpers/redis-server.js";
import { metric, type ServerProcess, sleep, until } from "../helpers/server.js";

type Data = { n: number };

describe("one Redis Cluster master killed and restarted", () => {
  const fixture = useRedisHosts(2, { cluster: true });

  it("keeps the other shards' channels crossing and counts the lost shard's messages on both sides", async () => {
    const { cluster, hosts, track } = fixture;
    const [a, b] = hosts as [ServerProcess, ServerProcess];
    // One channel per master; the first master is the one that goes down.
    const channels = (await channelsOnEachNode(cluster, 1, "chat:s")).flat();
    const victim = cluster.nodes[0] as RedisServer;
    const [down, ...up] = channels as [string, ...string[]];
    const onB = track(await RawClient.open(b.wsUrl));
    const onA = track(await RawClient.open(a.wsUrl));
    for (const ch of channels) {
      assert.equal((await onB.subscribe(ch)).type, "ack");
      assert.equal((await onA.subscribe(ch)).type, "ack");
    }

    let published = 0;
    let streaming = true;
    const stream = (async () => {
      while (streaming) {
        await Promise.all(channels.map((ch) => a.publish(ch, { n: published })));
        published += 1;
        await sleep(20);
      }
    })();
    await until(() => onB.messages(down).length >= 10, 5000, "traffic before the failure");
    await victim.stop("SIGKILL");
    // Both checks end within 1.5 s of the kill, shorter than --cluster-node-timeout (2 s): until then the rest of
    // the cluster keeps serving its slots (after it, the cluster would mark the master failed and stop serving).
    const killedAt = Date.now();
    const left = () => Math.max(0, killedAt + 1500 - Date.now());
    await until(async () => (await redisStatus(b)).state === "degraded", left(), "host B to report degraded");
    const before = up.map((ch) => onB.messages(ch).length);
    await until(
      () => up.every((ch, i) => onB.messages(ch).length > (before[i] as number) + 5),
      left(),
      `every live shard's channel to keep crossing while a shard is down (${up.join(", ")})`,
    );
    await victim.start();
    const restartedAt = published;
    await until(
      () => onB.messages(down).some((f) => (f.data as Data).n > restartedAt),
      8000,
      "the restarted shard's channel to cross again",
    );
    await sleep(500); // the stream goes on a while with the shard back
    streaming = false;
    await stream;

    // Everything published has arrived once A has all of it, B all of the live shards' channels, and B the last
    // message of the failed shard's channel (B counts a gap as missed before it delivers what follows).
    const all = [...Array(published).keys()];
    for (const ch of channels) await onA.waitForMessages(ch, published, 5000);
    for (const ch of up) await onB.waitForMessages(ch, published, 5000);
    await until(
      () => onB.messages(down).some((f) => (f.data as Data).n === published - 1),
      5000,
      `the last message on ${down} at host B`,
    );
    for (const ch of channels) {
      assert.deepEqual(
        onA.messages(ch).map((f) => (f.data as Data).n),
        all,
        `${ch}: host A delivers everything`,
      );
    }
    for (const ch of up) {
      assert.deepEqual(
        onB.messages(ch).map((f) => (f.data as Data).n),
        all,
        `${ch}: nothing lost on a live shard`,
      );
    }
    const gotDown = onB.messages(down) as (Frame & { data: Data })[];
    const missing = published - gotDown.length;
    assert.ok(missing > 0);
    for (let i = 1; i < gotDown.length; i++) {
      assert.ok((gotDown[i]?.offset as number) > (gotDown[i - 1]?.offset as number), "offsets increase");
    }
    // Never silent: wherever B's stream of the failed shard skips messages, B's client was told first.
    assert.deepEqual(silentLosses(onB.frames, down), [], "every loss on B is preceded by a history_gap");
    const gapsOn = (c: RawClient, ch: string) =>
      c.frames.filter((f) => f.type === "error" && f.code === "history_gap" && f.channel === ch);
    assert.ok(gapsOn(onB, down).length > 0);
    for (const f of gapsOn(onB, down)) assert.equal(f.reason, "messages_lost");
    for (const ch of up)
      assert.deepEqual(gapsOn(onB, ch), [], `${ch}: a live shard's subscribers are not told of losses`);
    assert.equal(await metric(b, "switchboard_redis_missed_total"), missing, "host B counts what it missed");
    const unrelayed = await metric(a, "switchboard_redis_unrelayed_total");
    // The message in flight when the master died may have reached B while its reply to A was lost.
    assert.ok(unrelayed > 0 && unrelayed <= missing + 1, `A unrelayed ${unrelayed}, B missed ${missing}`);
    await until(async () => (await redisStatus(b)).state === "up", 5000, "up");
    console.log(
      `shard outage: ${published} per channel, ${missing} missed on B's channel of the failed shard`,
    );
  });
});
