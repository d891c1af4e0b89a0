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
import { broadcastMessages, channelsQuestion, historyQuestion, userAction } from "./server-api-input.js";
import { channelRoom } from "./sio-gateway.js";
import type { WorkerCounters } from "./worker-counters.js";

export type HttpApiDeps = {
  config: Config;
  bus: BusClient;
  io: IoServer;
  counters: WorkerCounters;
  /** Raw subscriber count of a channel on this worker (for presence). */
  rawCount(channel: string): number;
  /** Subscribers (both protocols) of a channel on this worker. */
  subscriberCount(channel: string): number;
  /** True when the channel's namespace keeps presence. */
  presenceOn(channel: string): boolean;
  /** What /health and /ready answer: the primary's latest snapshot. */
  readiness(): Readiness;
  log: Logger;
};

/** Events /api/emit refuses: Socket.IO's own, and the ones Switchboard's clients take as channel traffic. */
const RESERVED_EVENTS = new Set([
  "connect",
  "connect_error",
  "disconnect",
  "disconnecting",
  "newListener",
  "removeListener",
  "error",
  "message",
  "gap",
  "token_expired",
]);
const MAX_EVENT_LENGTH = 64;
const MAX_ROOM_LENGTH = 256;

/** Presence question sent to the other workers with Socket.IO's serverSideEmit. */
export const PRESENCE_EVENT = "switchboard:presence";
/** Subscriber counts of some channels, asked of every worker of every host (the channel list). */
export const COUNTS_EVENT = "switchboard:counts";

/**
 * The worker's HTTP routes on the public port: the publish API, the server API (broadcast, presence, history,
 * channels, what to do to a user: docs/backend.md), POST /api/emit, and /health and /ready for requests that arrive on a kept-alive connection (the primary answers fresh ones; both
 * answer from the same snapshot, readiness.ts).
 */
export function createHttpApi(d: HttpApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const bodyLimit = Math.max(1024 * 1024, d.config.maxPayloadBytes * 2);
  const limits = { maxChannelLength: d.config.maxChannelLength, maxPayloadBytes: d.config.maxPayloadBytes };
  d.io.on(PRESENCE_EVENT, (channel: string, reply: (n: number) => void) => reply(d.rawCount(channel)));
  d.io.on(COUNTS_EVENT, (channels: string[], reply: (counts: number[]) => void) =>
    reply(channels.map((c) => d.subscriberCount(c))),
  );

  return (req, res) => {
    const run = async (): Promise<void> => {
      const url = requestUrl(req.url);
      const route = `${req.method} ${url.pathname}`;
      // Every /api/ route has the publish API's access rule (README "HTTP").
      if (url.pathname.startsWith("/api/")) checkApiAccess(req, d.config.apiKey);
      switch (route) {
        case "GET /health":
        case "GET /ready": {
          const answer = answerProbe(url.pathname, d.readiness()) as ProbeAnswer;
          return send(res, answer.status, answer.body);
        }
        case "POST /api/publish":
          return send(res, 200, await publish(await readJson(req, bodyLimit)));
        case "GET /api/presence":
          return send(res, 200, await presence(url.searchParams.get("channel")));
        case "GET /api/presence-stats":
          return send(res, 200, await d.bus.ask({ kind: "presenceStats", channel: channelParam(url) }));
        case "GET /api/history":
          return send(res, 200, await d.bus.ask(historyQuestion(url, limits)));
        case "GET /api/channels":
          return send(res, 200, await channels(url));
        case "POST /api/broadcast":
          return send(res, 200, await broadcast(await readJson(req, bodyLimit)));
        case "POST /api/disconnect":
        case "POST /api/unsubscribe":
        case "POST /api/refresh":
          return send(
            res,
            200,
            await d.bus.ask({
              kind: "userAction",
              action: userAction(url.pathname, await readJson(req, bodyLimit), limits),
            }),
          );
        case "POST /api/emit":
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
      // Node would close at once after the answer (Connection: close) with the body still coming: readJson
      // closes once it ended instead.
      if ((req as LingeringRequest).lingering) res.shouldKeepAlive = true;
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

  function channelParam(url: URL): string {
    return checkedChannel(url.searchParams.get("channel"), d.config.maxChannelLength);
  }

  /** Occupied channels (every host), a page at a time, each with its subscribers on every worker of every host. */
  async function channels(url: URL): Promise<unknown> {
    const page = (await d.bus.ask(channelsQuestion(url, limits))) as {
      channels: string[];
      cursor: string | null;
    };
    const elsewhere =
      page.channels.length === 0
        ? []
        : ((await d.io.serverSideEmitWithAck(COUNTS_EVENT, page.channels)) as number[][]);
    return {
      channels: page.channels.map((channel, i) => ({
        channel,
        subscribers: d.subscriberCount(channel) + elsewhere.reduce((n, counts) => n + (counts[i] ?? 0), 0),
      })),
      cursor: page.cursor,
    };
  }

  /** One message to many channels: each channel numbers it on its own (one offset per channel). */
  async function broadcast(body: unknown): Promise<unknown> {
    const results = await d.bus.publish(broadcastMessages(body, limits));
    return { ok: true, offsets: results.map((r) => r.offset), epochs: results.map((r) => r.epoch) };
  }

  /** With presence on for the namespace: who is there; otherwise the subscriber counts per protocol (a scan). */
  async function presence(channel: string | null): Promise<unknown> {
    const name = checkedChannel(channel, d.config.maxChannelLength);
    if (d.presenceOn(name)) return d.bus.ask({ kind: "presence", channel: name });
    const [sockets, rawElsewhere] = await Promise.all([
      d.io.in(channelRoom(name)).fetchSockets(),
      d.io.serverSideEmitWithAck(PRESENCE_EVENT, name) as Promise<number[]>,
    ]);
    const raw = d.rawCount(name) + rawElsewhere.reduce((a, b) => a + b, 0);
    return { channel: name, raw, socketio: sockets.length, sockets: sockets.map((s) => s.id) };
  }

  /**
   * `io.to(room).emit(event, ...args)` across workers (and hosts), for apps that emit their own Socket.IO events:
   * to a Socket.IO `room` (a socket id, a room the app manages) or to a `channel`'s Socket.IO subscribers.
   */
  function emit(body: unknown): unknown {
    if (!isObject(body))
      throw new SwitchboardError("bad_request", 'body must be {"room"|"channel":…,"event":…,"args":[…]}');
    const { room, channel, event } = body;
    if (typeof event !== "string" || event.length === 0 || event.length > MAX_EVENT_LENGTH)
      throw new SwitchboardError("bad_request", `event must be a name of 1-${MAX_EVENT_LENGTH} characters`);
    if (RESERVED_EVENTS.has(event))
      throw new SwitchboardError(
        "bad_request",
        `event "${event}" is reserved (${[...RESERVED_EVENTS].join(", ")})`,
      );
    if ((room === undefined) === (channel === undefined))
      throw new SwitchboardError("bad_request", 'give either "room" or "channel"');
    let target: string;
    if (channel !== undefined) target = channelRoom(checkedChannel(channel, d.config.maxChannelLength));
    else if (typeof room === "string" && room.length > 0 && room.length <= MAX_ROOM_LENGTH) target = room;
    else
      throw new SwitchboardError("bad_request", `room must be a string of 1-${MAX_ROOM_LENGTH} characters`);
    if (body.args !== undefined && !Array.isArray(body.args))
      throw new SwitchboardError("bad_request", "args must be an array");
    const args = (body.args as unknown[] | undefined) ?? [];
    encodedData(args, d.config.maxPayloadBytes, "args: ");
    d.io.to(target).emit(event, ...args);
    return { ok: true };
  }
}

/**
 * The request target as a URL. It is always a path here: prefixing the origin keeps one that starts with `//` a
 * path (new URL would read it as a host), and what still does not parse is a bad request, not a crash.
 */
function requestUrl(target: string | undefined): URL {
  try {
    return new URL(`http://x${target?.startsWith("/") ? target : "/"}`);
  } catch {
    throw new SwitchboardError("bad_request", "the request target is not a valid path");
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A request whose oversized body is still being read and dropped. */
type LingeringRequest = IncomingMessage & { lingering?: boolean };

/** How long, and how much more, a body over the limit is read (and dropped) so the 413 reaches the client. */
const OVERFLOW_DRAIN_MS = 2000;

function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => {
      // A lingering close: keep reading what is still coming (dropped) and close only once the body ended, so the
      // client gets the 413 instead of a reset (closing with unread bytes resets the connection); a body that goes
      // on is cut once the answer had time to go out.
      req.removeAllListeners("data");
      req.resume();
      (req as LingeringRequest).lingering = true;
      const cut = setTimeout(() => req.socket.destroy(), OVERFLOW_DRAIN_MS);
      cut.unref();
      req.once("end", () => {
        clearTimeout(cut);
        req.socket.end();
      });
      reject(new SwitchboardError("too_large", `body exceeds ${limit} bytes`));
    };
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > limit) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) tooLarge();
      else chunks.push(c);
    });
    req.on("end", () => {
      if (size > limit) return;
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
