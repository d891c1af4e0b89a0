import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { keySlot } from "../../src/bus/redis/key-slot.js";
import { parseRedisTarget } from "../../src/bus/redis/redis-options.js";
import {
  decodeSioMessage,
  encodeSioMessage,
  ORIGIN_LENGTH,
  parseChannelMessage,
  RedisNames,
} from "../../src/bus/redis/redis-wire.js";
import { type ConfigError, loadConfig } from "../../src/config.js";

const me = Buffer.from("AAAAAAAAAAAA", "latin1");
const other = Buffer.from("BBBBBBBBBBBB", "latin1");

describe("keySlot", () => {
  it("matches Redis' CLUSTER KEYSLOT, hash tags included", () => {
    assert.equal(keySlot("foo"), 12182);
    assert.equal(keySlot("bar"), 5061);
    assert.equal(keySlot("hello"), 866);
    assert.equal(keySlot("switchboard:msg:{chat:c1}"), 14500);
    // An empty tag hashes the whole key: CLUSTER KEYSLOT "{}empty-tag" answers 16021.
    assert.equal(keySlot("{}empty-tag"), 16021);
    assert.notEqual(keySlot("{}a"), keySlot("{}b"), "an empty tag hashes the whole key");
  });

  it("puts a channel's numbering, history, idempotency keys and shard channel in the same slot", () => {
    const names = new RedisNames("switchboard");
    for (const channel of ["news", "chat:1", "a.b/c@d=e"]) {
      const slot = keySlot(names.messageChannel(channel));
      assert.equal(keySlot(names.metaKey(channel)), slot);
      assert.equal(keySlot(names.historyKey(channel)), slot);
      assert.equal(keySlot(names.idempotencyKey(channel, "k{x}:1")), slot);
      assert.equal(names.channelOf(names.messageChannel(channel)), channel);
    }
    assert.equal(names.channelOf(names.sio), null);
  });
});

describe("channel messages", () => {
  it("reads offset, epoch and data, and recognises our own echo without decoding it", () => {
    const payload = Buffer.from(`42 ${other.toString("latin1")} Ep0ch {"x":"é"}`);
    assert.deepEqual(parseChannelMessage(payload, me), {
      offset: 42,
      epoch: "Ep0ch",
      own: false,
      dataJson: '{"x":"é"}',
    });
    const echo = Buffer.from(`7 ${me.toString("latin1")} E "whatever"`);
    assert.deepEqual(parseChannelMessage(echo, me), { offset: 7, epoch: "E", own: true, dataJson: null });
  });

  it("rejects malformed payloads", () => {
    const o = "B".repeat(ORIGIN_LENGTH);
    for (const bad of [
      "",
      "x AAAAAAAAAAAA E 1",
      "12",
      "12 short 1",
      `1 ${o}-1`,
      `1 ${o} nodata`,
      `1 ${o}  1`,
    ]) {
      assert.equal(parseChannelMessage(Buffer.from(bad), me), null, bad);
    }
  });
});

describe("Socket.IO adapter messages", () => {
  it("round-trip with Buffers, Maps and nested data, tagged with their origin", () => {
    const message = {
      source: "_sio_adapter",
      uid: "u1",
      type: 3,
      data: { packet: { data: ["ev", Buffer.from([1, 2])] } },
    };
    const decoded = decodeSioMessage(encodeSioMessage(other, message), me);
    assert.ok(decoded);
    assert.equal(decoded.origin, other.toString("latin1"));
    assert.deepEqual(decoded.message, message);
    const packet = (decoded.message.data as { packet: { data: unknown[] } }).packet;
    assert.ok(Buffer.isBuffer(packet.data[1]));
  });

  it("drops our own and malformed ones", () => {
    assert.equal(decodeSioMessage(encodeSioMessage(me, { source: "_sio_adapter" }), me), null);
    assert.equal(decodeSioMessage(Buffer.concat([other, Buffer.from("not v8")]), me), null);
    assert.equal(decodeSioMessage(other, me), null);
  });
});

describe("--redis", () => {
  it("parses credentials, database and TLS from the URL", () => {
    const t = parseRedisTarget("rediss://user:p%40ss@cache.example:6380/3", false);
    assert.deepEqual(t.seeds, [{ host: "cache.example", port: 6380 }]);
    assert.equal(t.auth.username, "user");
    assert.equal(t.auth.password, "p@ss");
    assert.equal(t.auth.db, 3);
    assert.deepEqual(t.auth.tls, { servername: "cache.example" });
    assert.equal(t.display, "rediss://user@cache.example:6380/3", "no password in logs");
  });

  it("takes several seeds for a cluster", () => {
    const t = parseRedisTarget("redis://10.0.0.1:7000, redis://10.0.0.2", true);
    assert.deepEqual(t.seeds, [
      { host: "10.0.0.1", port: 7000 },
      { host: "10.0.0.2", port: 6379 },
    ]);
    assert.equal(t.cluster, true);
  });

  it("is validated at start-up, naming the key", () => {
    const problems = (env: NodeJS.ProcessEnv): string[] => {
      try {
        loadConfig({ env });
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    assert.deepEqual(problems({ REDIS_URL: "redis://a:1" }), []);
    assert.match(problems({ REDIS_URL: "redis://a:1,redis://b:2" })[0] ?? "", /add --redis-cluster/);
    assert.match(problems({ REDIS_URL: "redis://a:1/2", REDIS_CLUSTER: "true" })[0] ?? "", /no database/);
    assert.match(problems({ REDIS_URL: "redis://a:1/x" })[0] ?? "", /database number/);
    assert.match(problems({ REDIS_URL: "redis://a:1", REDIS_PREFIX: "a b" })[0] ?? "", /^--redis-prefix/);
  });
});
