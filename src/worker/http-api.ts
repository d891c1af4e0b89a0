import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server as IoServer } from "socket.io";
import type { Published } from "../bus/bus.js";
import type { Config } from "../config.js";
import { errorReply, SwitchboardError } from "../errors.js";
import type { OutgoingMessage } from "../ipc.js";
import type { Logger } from "../log.js";
import { checkedChannel, encodedData, idempotencyKeyProblem } from "../protocol/client-message.js";
import { publishedFields } from "../protocol/server-frames.js";
import { answerProbe, type ProbeAnswer, type Readiness } from "../readiness.js";
import { checkApiAccess } from "./auth.js";
import type { BusClient } from "./bus-client.js";
import type { WorkerCounters } from "./worker-counters.js";

export type HttpApiDeps = {
  config: Config;
  bus: BusClient;
  io: IoServer;
  counters: WorkerCounters;
  /** Raw subscriber count of a channel on this worker (for presence). */
  rawCount(channel: string): number;
  /** What /health and /ready answer: the primary's latest snapshot. */
  readiness(): Readiness;
  log: Logger;
};

/** Presence question sent to the other workers with Socket.IO's serverSideEmit. */
export const PRESENCE_EVENT = "switchboard:presence";

/**
 * The worker's HTTP routes on the public port: POST /api/publish, GET /api/presence, POST /api/emit, and
 * /health and /ready for requests that arrive on a kept-alive connection (the primary answers fresh ones; both
 * answer from the same snapshot, readiness.ts).
 */
export function createHttpApi(d: HttpApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const bodyLimit = Math.max(1024 * 1024, d.config.maxPayloadBytes * 2);
  d.io.on(PRESENCE_EVENT, (channel: string, reply: (n: number) => void) => reply(d.rawCount(channel)));

  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const route = `${req.method} ${url.pathname}`;
    const run = async (): Promise<void> => {
      switch (route) {
        case "GET /health":
        case "GET /ready": {
          const answer = answerProbe(url.pathname, d.readiness()) as ProbeAnswer;
          return send(res, answer.status, answer.body);
        }
        case "POST /api/publish":
          checkApiAccess(req, d.config.apiKey);
          return send(res, 200, await publish(await readJson(req, bodyLimit)));
        case "GET /api/presence":
          checkApiAccess(req, d.config.apiKey);
          return send(res, 200, await presence(url.searchParams.get("channel")));
        case "POST /api/emit":
          checkApiAccess(req, d.config.apiKey);
          return send(res, 200, emit(await readJson(req, bodyLimit)));
        default:
          throw new SwitchboardError("not_found", `no route ${route}`);
      }
    };
    run().catch((err: unknown) => {
      const e = err instanceof SwitchboardError ? err : new SwitchboardError("internal", "internal error");
      if (!(err instanceof SwitchboardError)) d.log.error({ err }, "HTTP handler failed");
      d.counters.error(e.code);
      const { status, body } = errorReply(e.code, e.message);
      send(res, status, body);
    });
  };

  async function publish(body: unknown): Promise<unknown> {
    const batch = isObject(body) && Array.isArray(body.messages);
    const items: unknown[] = batch ? (body as { messages: unknown[] }).messages : [body];
    if (items.length === 0) throw new SwitchboardError("bad_request", "messages must not be empty");
    const messages = items.map((m, i) => toMessage(m, batch ? `messages[${i}].` : ""));
    const results = await d.bus.publish(messages);
    if (batch)
      return { ok: true, offsets: results.map((r) => r.offset), epochs: results.map((r) => r.epoch) };
    return { ok: true, ...publishedFields(results[0] as Published) };
  }

  function toMessage(m: unknown, where: string): OutgoingMessage {
    if (!isObject(m))
      throw new SwitchboardError("bad_request", `${where || "body"} must be {"channel":…,"data":…}`);
    const channel = checkedChannel(m.channel, d.config.maxChannelLength, where);
    if (!("data" in m)) throw new SwitchboardError("bad_request", `${where}data is required`);
    const keyWhy = idempotencyKeyProblem(m.idempotencyKey);
    if (keyWhy) throw new SwitchboardError("bad_request", `${where}${keyWhy}`);
    const key = (m.idempotencyKey as string | undefined) ?? null;
    return [channel, encodedData(m.data, d.config.maxPayloadBytes, where), key];
  }

  async function presence(channel: string | null): Promise<unknown> {
    const name = checkedChannel(channel, d.config.maxChannelLength);
    const [sockets, rawElsewhere] = await Promise.all([
      d.io.in(name).fetchSockets(),
      d.io.serverSideEmitWithAck(PRESENCE_EVENT, name) as Promise<number[]>,
    ]);
    const raw = d.rawCount(name) + rawElsewhere.reduce((a, b) => a + b, 0);
    return { channel: name, raw, socketio: sockets.length, sockets: sockets.map((s) => s.id) };
  }

  function emit(body: unknown): unknown {
    if (!isObject(body) || typeof body.room !== "string" || typeof body.event !== "string") {
      throw new SwitchboardError("bad_request", 'body must be {"room":…,"event":…,"args":[…]}');
    }
    const args = Array.isArray(body.args) ? body.args : [];
    d.io.to(body.room).emit(body.event, ...args);
    return { ok: true };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) {
      req.resume();
      return reject(new SwitchboardError("too_large", `body exceeds ${limit} bytes`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new SwitchboardError("too_large", `body exceeds ${limit} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks, size).toString("utf8")));
      } catch {
        reject(new SwitchboardError("bad_request", "body is not valid JSON"));
      }
    });
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}
