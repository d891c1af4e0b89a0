/**
 * The "naive" comparison server: one process, the `ws` package, a Map of channel → Set of sockets, and a
 * publish route that loops over the subscribers calling `ws.send(JSON.stringify(...))` for each one.
 * Speaks the raw protocol of docs/protocol.md (subscribe/unsubscribe/ack/message) on /ws.
 *
 * Usage: node ws-server.js --port 0
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { handlePublish, type PublishItem } from "./publish-body.js";
import { argValue, logReady } from "./server-cli.js";

const channels = new Map<string, Set<WebSocket>>();
const offsets = new Map<string, number>();

function publish(item: PublishItem): number {
  const offset = (offsets.get(item.channel) ?? 0) + 1;
  offsets.set(item.channel, offset);
  const subs = channels.get(item.channel);
  if (subs) {
    for (const ws of subs) {
      ws.send(JSON.stringify({ type: "message", channel: item.channel, data: item.data, offset }));
    }
  }
  return offset;
}

function onClientMessage(ws: WebSocket, mine: Set<string>, raw: string): void {
  let msg: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== "object" || parsed === null) throw new Error("not an object");
    msg = parsed as Record<string, unknown>;
  } catch {
    ws.send(JSON.stringify({ type: "error", code: "bad_request", message: "invalid JSON" }));
    return;
  }
  const { type, channel, id } = msg;
  if (type === "ping") {
    ws.send(JSON.stringify({ type: "pong", id }));
    return;
  }
  if ((type !== "subscribe" && type !== "unsubscribe") || typeof channel !== "string") {
    ws.send(JSON.stringify({ type: "error", id, code: "unknown_type", message: "unsupported" }));
    return;
  }
  if (type === "subscribe") {
    let subs = channels.get(channel);
    if (!subs) {
      subs = new Set();
      channels.set(channel, subs);
    }
    subs.add(ws);
    mine.add(channel);
  } else {
    channels.get(channel)?.delete(ws);
    mine.delete(channel);
  }
  ws.send(JSON.stringify({ type: "ack", id }));
}

const server = createServer((req, res) => {
  if (req.method === "POST" && req.url === "/api/publish") {
    handlePublish(req, res, publish);
    return;
  }
  if (req.url === "/health" || req.url === "/ready") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
    return;
  }
  res.writeHead(404);
  res.end();
});

const wss = new WebSocketServer({ server, path: "/ws" });
wss.on("connection", (ws) => {
  const mine = new Set<string>();
  ws.on("message", (data) => onClientMessage(ws, mine, data.toString()));
  ws.on("close", () => {
    for (const ch of mine) channels.get(ch)?.delete(ws);
  });
  ws.on("error", () => ws.terminate());
});

server.listen(Number(argValue(process.argv, "--port", "0")), "127.0.0.1", () => {
  logReady((server.address() as AddressInfo).port, 1);
});

function shutdown(): void {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
