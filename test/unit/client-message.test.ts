import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SwitchboardError } from "../../src/errors.js";
import {
  channelProblem,
  checkedChannel,
  encodedData,
  parseClientMessage,
  requestIdOf,
  sinceProblem,
} from "../../src/protocol/client-message.js";

const parse = (frame: unknown) =>
  parseClientMessage(typeof frame === "string" ? frame : JSON.stringify(frame), 32);

describe("parseClientMessage", () => {
  it("parses each request type and keeps the id", () => {
    assert.deepEqual(parse({ type: "subscribe", channel: "news", id: 1 }), {
      type: "subscribe",
      channel: "news",
      id: 1,
    });
    assert.deepEqual(parse({ type: "subscribe", channel: "news", since: 41 }), {
      type: "subscribe",
      channel: "news",
      since: 41,
    });
    assert.deepEqual(parse({ type: "unsubscribe", channel: "news", id: "a" }), {
      type: "unsubscribe",
      channel: "news",
      id: "a",
    });
    assert.deepEqual(parse({ type: "publish", channel: "chat:1", data: { t: 1 }, id: 4 }), {
      type: "publish",
      channel: "chat:1",
      data: { t: 1 },
      id: 4,
    });
    assert.deepEqual(parse({ type: "publish", channel: "c", data: null }), {
      type: "publish",
      channel: "c",
      data: null,
    });
    assert.deepEqual(parse({ type: "ping", id: 5 }), { type: "ping", id: 5 });
    assert.deepEqual(parse({ type: "subscribe", channel: "news", since: 41, epoch: "k3x9", id: 2 }), {
      type: "subscribe",
      channel: "news",
      since: 41,
      epoch: "k3x9",
      id: 2,
    });
    assert.deepEqual(parse({ type: "publish", channel: "c", data: 1, idempotencyKey: "k-1" }), {
      type: "publish",
      channel: "c",
      data: 1,
      idempotencyKey: "k-1",
    });
  });

  it("checks a resume's epoch and a publish's idempotency key", () => {
    const error = (frame: object) => (parse(frame) as { error?: string; message?: string }).message;
    assert.equal(
      error({ type: "subscribe", channel: "c", epoch: "e" }),
      "epoch needs since (the offset to resume after)",
    );
    assert.equal(
      error({ type: "subscribe", channel: "c", since: 1, epoch: "" }),
      "epoch must be a string of 1-64 characters",
    );
    assert.equal(
      error({ type: "subscribe", channel: "c", since: 1, epoch: "x".repeat(65) }),
      "epoch must be a string of 1-64 characters",
    );
    assert.equal(
      error({ type: "subscribe", channel: "c", since: 1, epoch: 7 }),
      "epoch must be a string of 1-64 characters",
    );
    for (const key of ["", 5, "k".repeat(129)]) {
      assert.equal(
        error({ type: "publish", channel: "c", data: 1, idempotencyKey: key }),
        "idempotencyKey must be a string of 1-128 characters",
      );
    }
  });

  it("answers each malformed frame with its code", () => {
    assert.equal((parse("{") as { error: string }).error, "bad_request");
    assert.equal((parse("[1]") as { error: string }).error, "bad_request");
    assert.equal((parse({ channel: "x" }) as { error: string }).error, "bad_request");
    assert.deepEqual(parse({ type: "jump", id: 7 }), {
      error: "unknown_type",
      message: 'unknown type "jump"; expected subscribe, unsubscribe, publish, refresh, rpc or ping',
      id: 7,
    });
    assert.equal((parse({ type: "subscribe", channel: 5 }) as { error: string }).error, "invalid_channel");
    assert.equal((parse({ type: "publish", channel: "c" }) as { error: string }).error, "bad_request");
    assert.equal(
      (parse({ type: "subscribe", channel: "c", since: 1.5 }) as { error: string }).error,
      "bad_request",
    );
    assert.equal((parse({ type: "ping", id: { a: 1 } }) as { error: string }).error, "bad_request");
  });

  it("checks channel names", () => {
    assert.equal(channelProblem("room:1/a.b@c=d_e-f", 32), null);
    assert.match(channelProblem("", 32) ?? "", /non-empty/);
    assert.match(channelProblem("a".repeat(33), 32) ?? "", /longer than 32/);
    assert.match(channelProblem("a b", 32) ?? "", /may only contain/);
  });

  it("checks since", () => {
    assert.equal(sinceProblem(undefined), null);
    assert.equal(sinceProblem(0), null);
    for (const bad of [-1, 1.5, "3", null]) {
      assert.equal(sinceProblem(bad), "since must be a non-negative integer offset");
    }
  });

  it("checks a publish's channel and data size, with the reason's prefix", () => {
    assert.equal(checkedChannel("chat:1", 32), "chat:1");
    assert.throws(
      () => checkedChannel("", 32, "messages[1]."),
      (e: SwitchboardError) =>
        e.code === "invalid_channel" && e.message === "messages[1].channel must be a non-empty string",
    );
    assert.equal(encodedData({ a: 1 }, 7), '{"a":1}');
    assert.throws(
      () => encodedData({ a: 10 }, 7),
      (e: SwitchboardError) =>
        e instanceof SwitchboardError && e.code === "too_large" && e.message === "data exceeds 7 bytes",
    );
  });

  it("recovers the id of a frame rejected before parsing", () => {
    assert.equal(requestIdOf('{"id":9,"pad":"x"}'), 9);
    assert.equal(requestIdOf("{broken"), undefined);
  });
});
