import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SID_PARAM, sessionPrefix, workerOfSession } from "../../src/session-id.js";

describe("session ids that name their worker", () => {
  it("round-trips the worker id", () => {
    assert.equal(workerOfSession(`${sessionPrefix(12)}AbCdEfGhIjKlMnOpQrSt`), 12);
    assert.equal(workerOfSession("AbCdEfGhIjKlMnOpQrSt"), undefined);
  });

  it("reads sid only from the query string", () => {
    assert.equal(
      SID_PARAM.exec("/socket.io/?EIO=4&transport=polling&sid=w3-abc_DEF-12")?.[1],
      "w3-abc_DEF-12",
    );
    assert.equal(SID_PARAM.exec("/socket.io/?EIO=4&xsid=w3-abc")?.[1], undefined);
  });
});
