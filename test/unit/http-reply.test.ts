import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { it } from "node:test";
import { endWithJson } from "../../src/http-reply.js";

it("endWithJson writes one complete JSON response and ends the socket", async () => {
  const socket = new PassThrough();
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => socket.on("end", resolve));
  endWithJson(socket, 503, { error: { code: "unavailable", message: "é" } });
  await ended;
  const [head, body] = Buffer.concat(chunks).toString("utf8").split("\r\n\r\n");
  assert.deepEqual(head?.split("\r\n"), [
    "HTTP/1.1 503 Service Unavailable",
    "Content-Type: application/json",
    `Content-Length: ${Buffer.byteLength(body ?? "")}`,
    "Cache-Control: no-store",
    "Connection: close",
  ]);
  assert.deepEqual(JSON.parse(body ?? ""), { error: { code: "unavailable", message: "é" } });
});
