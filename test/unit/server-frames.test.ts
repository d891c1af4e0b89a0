import assert from "node:assert/strict";
import type { Writable } from "node:stream";
import { describe, it } from "node:test";
import * as ws from "ws";

// ws exports its frame parser at run time; @types/ws does not declare it.
const { Receiver } = ws as unknown as { Receiver: new (o: { isServer: boolean }) => Writable };

import { encodeTextFrame, errorText, messageText } from "../../src/protocol/server-frames.js";

function decode(frame: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false });
    receiver.on("message", (data: Buffer) => resolve(data.toString()));
    receiver.on("error", reject);
    receiver.write(frame);
  });
}

describe("server frames", () => {
  it("splices a message frame around pre-serialized data", () => {
    const text = messageText(JSON.stringify("news"), '{"a":[1,2]}', 42);
    assert.deepEqual(JSON.parse(text), { type: "message", channel: "news", data: { a: [1, 2] }, offset: 42 });
  });

  it("encodes errors with and without an id", () => {
    assert.deepEqual(JSON.parse(errorText("forbidden", "no", 3)), {
      type: "error",
      id: 3,
      code: "forbidden",
      message: "no",
    });
    assert.deepEqual(JSON.parse(errorText("too_large", "big")), {
      type: "error",
      code: "too_large",
      message: "big",
    });
  });

  for (const size of [0, 125, 126, 65535, 65536, 200_000]) {
    it(`encodes a ${size}-byte text frame that ws decodes`, async () => {
      const text = "é".repeat(Math.floor(size / 2)) + (size % 2 ? "a" : "");
      assert.equal(await decode(encodeTextFrame(text)), text);
    });
  }
});
