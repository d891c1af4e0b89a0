import type { Server as HttpServer, IncomingMessage } from "node:http";
import { createAdapter } from "@socket.io/cluster-adapter";
import { Server, type Socket } from "socket.io";
import type { Resume } from "../bus/bus.js";
import { type ErrorCode, errorReply, type SwitchboardError } from "../errors.js";
import { backendFields, type ConnectRequest, type HookSession } from "../hooks/backend-hooks.js";
import {
  applySession,
  claimsOf,
  connectError,
  pickHeaders,
  queryOf,
  remoteAddrOf,
} from "../hooks/connect-admission.js";
import { SessionRefresher } from "../hooks/session-refresh.js";
import { SubscribeGate } from "../hooks/subscribe-gate.js";
import type { HistoryEntry } from "../ipc.js";
import { isParseFailure, toClientMessage } from "../protocol/client-message.js";
import { lostGap, publishedFields } from "../protocol/server-frames.js";
import { type Claims, tokenOf, unexpired } from "./auth.js";
import { type ClientPublish, createClientPublish } from "./client-publish.js";
import type { GatewayDeps } from "./gateway-deps.js";
import { SioMember, sioEvent } from "./sio-member.js";
import { EXPIRED_MESSAGE, refreshedClaims, startExpirySweep } from "./token-refresh.js";

/** What the connect hook gets of a session's first request, kept (only with a connect hook) until it is accepted. */
type HookRequest = Pick<ConnectRequest, "remoteAddr" | "query" | "headers">;

/** Engine.IO's socket as we trim it: the request dropped once its token (and what the connect hook needs) is read. */
type EngineSocket = {
  request: (IncomingMessage & { _query?: object }) | null;
  requestToken?: string;
  hookRequest?: HookRequest | undefined;
  transport: { name: string };
};

type Ack = (
  reply:
    | ({ ok: true } & Record<string, unknown>)
    | { error: { code: ErrorCode; message: string } & Record<string, unknown> },
) => void;

const MEMBER = Symbol("switchboard.member");

/**
 * The Socket.IO room of a channel's subscribers. Channels have a room namespace of their own: a channel named like
 * another socket's id must not reach that socket's private room (what `/api/emit` to a socket id sends).
 */
export function channelRoom(channel: string): string {
  return `channel:${channel}`;
}

/** A Socket.IO socket with its member attached: shared listeners find their connection through it. */
type MemberSocket = Socket & { [MEMBER]?: SioMember };

/** Socket.IO on /socket.io/ (docs/protocol.md) with @socket.io/cluster-adapter for its own cross-worker features. */
export class SioGateway {
  readonly io: Server;
  readonly #d: GatewayDeps;
  readonly #publish: ClientPublish;
  readonly #gate: SubscribeGate;
  readonly #sessions: SessionRefresher;
  readonly #sweep: NodeJS.Timeout;
  readonly #expiry: NodeJS.Timeout | null;
  readonly #onEvent: (this: MemberSocket, event: string, ...args: unknown[]) => void;
  readonly #onDisconnect: (this: MemberSocket, reason: string) => void;

  constructor(server: HttpServer, d: GatewayDeps) {
    this.#d = d;
    this.#publish = createClientPublish(d.config, d.namespaces, d.bus, d.hooks);
    this.#gate = new SubscribeGate(d.hooks, d.namespaces, d.subscriptions);
    this.#sessions = new SessionRefresher(d.hooks, (m) => this.#expire(m as SioMember));
    this.io = new Server(server, {
      path: "/socket.io/",
      adapter: createAdapter(),
      serveClient: false,
      maxHttpBufferSize: d.config.maxPayloadBytes * 4,
      perMessageDeflate: false,
      httpCompression: false,
      pingInterval: d.config.pingIntervalMs,
      destroyUpgrade: false,
      cors: { origin: true, credentials: true },
    });
    // Engine.IO keeps each session's first HTTP request for the socket's lifetime (its WebSocket upgrade path also
    // leaves listeners that reach it): kilobytes of headers and parsed query per connection. Only the token is
    // needed, so keep that, drop the reference and empty the request (the Socket.IO docs' "Memory usage" advice,
    // taken one step further).
    this.io.engine.on("connection", (raw: EngineSocket) => {
      const req = raw.request;
      if (!req) return;
      raw.requestToken = tokenOf(req);
      if (d.hooks.connectHook) {
        raw.hookRequest = {
          remoteAddr: remoteAddrOf(req.headers, req.socket?.remoteAddress),
          query: queryOf(req.url),
          headers: pickHeaders(req.headers, d.hooks.headerNames),
        };
      }
      raw.request = null;
      req.rawHeaders = [];
      req.headers = {};
      req._query = {};
    });
    this.io.use((socket, next) => {
      const auth = socket.handshake.auth as { token?: unknown };
      const conn = socket.conn as unknown as EngineSocket;
      const token = (typeof auth?.token === "string" ? auth.token : undefined) ?? conn.requestToken;
      claimsOf(d.verifyToken, token, d.hooks.connectHook).then(
        async (claims) => {
          socket.data.claims = claims;
          if (!d.hooks.connectHook) return next();
          const decision = await d.hooks.connect({
            client: socket.id,
            protocol: "socket.io",
            transport: conn.transport.name === "polling" ? "polling" : "websocket",
            ...(conn.hookRequest ?? { remoteAddr: "", query: {}, headers: {} }),
          });
          if (decision.kind === "accept") {
            socket.data.session = decision.session;
            return next();
          }
          if (decision.kind !== "disconnect")
            d.counters.error(decision.kind === "refuse" ? "forbidden" : "backend_unavailable");
          next(connectError(decision));
        },
        (err: Error) => {
          d.counters.error("unauthorized");
          next(Object.assign(new Error(err.message), { data: { code: "unauthorized" } }));
        },
      );
    });
    const gateway = this;
    this.#onEvent = function (event, ...args) {
      const member = this[MEMBER];
      if (!member) return;
      const ack = args[args.length - 1];
      try {
        gateway.#dispatch(member, event, args);
      } catch (err) {
        // A fault of ours: logged, answered `internal` when the event wants an answer; the socket stays.
        gateway.#d.log.error({ err, event }, "Socket.IO event handling failed");
        if (typeof ack === "function") gateway.#fail(ack as Ack, "internal", "internal error");
        else gateway.#d.counters.error("internal");
      }
    };
    this.#onDisconnect = function (reason) {
      const member = this[MEMBER];
      if (!member) return;
      gateway.#d.clients.closed(member, peerCloseReason(reason));
      gateway.#d.subscriptions.leaveAll(member);
    };
    this.io.on("connection", (socket) => this.#open(socket));
    this.#sweep = setInterval(() => this.#sweepSlowConsumers(), 250);
    this.#sweep.unref();
    this.#expiry = startExpirySweep(d.config, (now) => {
      for (const socket of this.io.of("/").sockets.values()) {
        const member = (socket as MemberSocket)[MEMBER];
        if (!member) continue;
        if (!unexpired(member.claims, now)) this.#expire(member);
        else this.#sessions.check(member, now);
      }
    });
  }

  /**
   * Every socket shares the same two listeners (one for all client events, one for disconnect) instead of
   * closures of its own: per-socket closures cost about 2 KiB per idle connection.
   */
  #open(socket: MemberSocket): void {
    const member = new SioMember(
      socket,
      (socket.data.claims as Claims | null) ?? null,
      this.#d.config.clientRate,
      this.#d.flusher,
    );
    const session = socket.data.session as HookSession | undefined;
    if (session) {
      applySession(member, session);
      this.#sessions.grant(member, session.expireAt);
      delete socket.data.session;
      (socket.conn as unknown as EngineSocket).hookRequest = undefined;
    }
    socket[MEMBER] = member;
    this.#d.clients.opened(member);
    socket.onAny(this.#onEvent);
    socket.on("disconnect", this.#onDisconnect);
    // The connect hook's channels: joined without the subscribe hook, and nothing is sent but their messages.
    if (session) for (const channel of session.channels) this.#subscribe(member, channel, null, noAck, false);
  }

  /** Socket.IO events become the raw protocol's frames and go through the same checks (toClientMessage). */
  #dispatch(member: SioMember, event: string, args: unknown[]): void {
    const last = args[args.length - 1];
    const ack: Ack = typeof last === "function" ? (args.pop() as Ack) : () => {};
    if (!member.budget.take()) return this.#fail(ack, "rate_limited", "too many events per second");
    if (!unexpired(member.claims)) return this.#expire(member);
    if (event === "refresh") return this.#refresh(member, args[0], ack);
    if (event === "rpc") return this.#rpc(member, args[0], args[1], ack);
    if (event !== "subscribe" && event !== "unsubscribe" && event !== "publish") {
      return this.#fail(
        ack,
        "bad_request",
        `unknown event ${JSON.stringify(event)}; use subscribe, unsubscribe, publish, refresh or rpc`,
      );
    }
    const [first, second, third] = args;
    const target = typeof first === "object" && first !== null ? first : { channel: first };
    const frame =
      event === "publish"
        ? { type: event, channel: first, data: second ?? null, ...options(third) }
        : { type: event, ...target };
    const msg = toClientMessage(frame as Record<string, unknown>, this.#d.config.maxChannelLength);
    if (isParseFailure(msg)) return this.#fail(ack, msg.error, msg.message);
    switch (msg.type) {
      case "subscribe": {
        const resume = msg.since === undefined ? null : { since: msg.since, epoch: msg.epoch ?? null };
        return this.#subscribe(member, msg.channel, resume, ack, true);
      }
      case "unsubscribe":
        this.#gate.cancel(member, msg.channel);
        this.#d.subscriptions.unsubscribe(member, msg.channel);
        this.#stopReplay(member, msg.channel);
        member.socket.leave(channelRoom(msg.channel));
        return ack({ ok: true });
      case "publish":
        return this.#publish(
          member,
          msg,
          (r) => ack({ ok: true, ...publishedFields(r) }),
          (err) => this.#fail(ack, err.code, err.message, backendFields(err)),
        );
    }
  }

  /** `socket.emit("rpc", method, data, ack)`: the backend's answer (--rpc-hook) as `{ok:true, data}`. */
  #rpc(member: SioMember, method: unknown, data: unknown, ack: Ack): void {
    const msg = toClientMessage({ type: "rpc", method, data }, this.#d.config.maxChannelLength);
    if (isParseFailure(msg)) return this.#fail(ack, msg.error, msg.message);
    if (msg.type !== "rpc") return;
    this.#d.hooks.rpc(member, msg.method, msg.data).then(
      (answer) => ack({ ok: true, data: answer }),
      (err: SwitchboardError) => this.#fail(ack, err.code, err.message, backendFields(err)),
    );
  }

  /** `socket.emit("refresh", token, ack)`: a new token for the same user; its `exp` replaces the old one. */
  #refresh(member: SioMember, token: unknown, ack: Ack): void {
    const msg = toClientMessage({ type: "refresh", token }, this.#d.config.maxChannelLength);
    if (isParseFailure(msg)) return this.#fail(ack, msg.error, msg.message);
    if (msg.type !== "refresh") return;
    refreshedClaims(this.#d.verifyToken, member.claims, msg.token).then(
      (claims) => {
        member.claims = claims;
        ack(claims.exp === undefined ? { ok: true } : { ok: true, exp: claims.exp });
      },
      (err: SwitchboardError) => this.#fail(ack, err.code, err.message),
    );
  }

  /** The token expired without a refresh: a `token_expired` event, then the server disconnects the socket. */
  #expire(member: SioMember): void {
    if (member.closed) return;
    this.#d.counters.error("token_expired");
    member.socket.emit("token_expired", errorReply("token_expired", EXPIRED_MESSAGE).body.error);
    member.closeReason = "token_expired";
    member.socket.disconnect(true);
  }

  /** `viaHook`: a client's subscribe (asks the subscribe hook where configured), not the connect hook's channel. */
  #subscribe(member: SioMember, name: string, resume: Resume | null, ack: Ack, viaHook: boolean): void {
    const join = viaHook ? this.#gate : this.#d.subscriptions;
    join.subscribe(member, name, resume, (outcome) => {
      if (!outcome.ok) {
        const { code, message } = outcome.error;
        return this.#fail(ack, code, message, backendFields(outcome.error));
      }
      const { offset, gap, history, recovered } = outcome;
      if (gap)
        this.#fail(ack, "history_gap", gap.message, { reason: gap.reason, offset, epoch: outcome.epoch });
      else ack({ ok: true, offset, epoch: outcome.epoch, recovered });
      // Not a member when it unsubscribed or left while the subscribe was pending: no room then.
      if (!member.channels.has(name)) return;
      if (history.length === 0) member.socket.join(channelRoom(name));
      else void this.#replay(member, name, history);
    });
  }

  /**
   * Sends a resume's history a chunk at a time, each once Socket.IO has written the one before, so a long replay
   * stays within the slow-consumer bound; the socket joins the channel's room after it, and live events that came
   * meanwhile follow in order.
   */
  async #replay(member: SioMember, channel: string, history: readonly HistoryEntry[]): Promise<void> {
    member.held ??= new Map();
    member.held.set(channel, []);
    const chunkBytes = Math.max(16 * 1024, Math.floor(this.#d.config.maxBufferedBytes / 4));
    let i = 0;
    while (i < history.length && !member.closed && member.held?.has(channel)) {
      let chunk = 0;
      while (i < history.length && (chunk === 0 || chunk < chunkBytes)) {
        const [offset, dataJson] = history[i++] as HistoryEntry;
        chunk += dataJson.length;
        member.socket.emit("message", channel, JSON.parse(dataJson), { offset });
      }
      while (!member.closed && bufferedBytes(member.socket) > chunkBytes / 2) await tick(10);
    }
    const held = member.held?.get(channel);
    this.#stopReplay(member, channel);
    if (!held || member.closed || !member.channels.has(channel)) return;
    for (const event of held) member.send(event);
    member.socket.join(channelRoom(channel));
  }

  #stopReplay(member: SioMember, channel: string): void {
    member.held?.delete(channel);
    if (member.held?.size === 0) member.held = null;
  }

  /**
   * Delivers one message to this worker's Socket.IO subscribers: encoded once, queued on each for the worker's next
   * write pass (SioMember.flush), the way raw connections get theirs; behind its history for one still replaying.
   */
  deliver(channel: string, offset: number, dataJson: string): number {
    return this.#toMembers(channel, `"message",${JSON.stringify(channel)},${dataJson},{"offset":${offset}}`);
  }

  /** Tells this worker's Socket.IO subscribers of `channel` that messages may be missing (event "gap"). */
  lost(channel: string, offset: number, epoch: string): void {
    const gap = lostGap(offset);
    const info = { offset, epoch, reason: gap.reason, message: gap.message };
    this.#toMembers(channel, `"gap",${JSON.stringify(channel)},${JSON.stringify(info)}`);
  }

  /** A join or leave notice of a joinLeave channel: the event `join` / `leave` with (channel, info). */
  presence(channel: string, kind: "join" | "leave", infoJson: string): void {
    this.#toMembers(channel, `"${kind}",${JSON.stringify(channel)},${infoJson}`);
  }

  /** Queues one event (`argsJson`: its arguments' JSON) on every Socket.IO subscriber of `channel` here. */
  #toMembers(channel: string, argsJson: string): number {
    const members = this.#d.registry.sioMembers(channel);
    if (!members || members.size === 0) return 0;
    const event = sioEvent(argsJson);
    for (const m of members) (m as SioMember).sendLive(channel, event);
    return members.size;
  }

  #fail(ack: Ack, code: ErrorCode, message: string, extra?: Record<string, unknown>): void {
    this.#d.counters.error(code);
    const { error } = errorReply(code, message).body;
    ack({ error: { ...error, ...extra } });
  }

  /**
   * Socket.IO buffers per socket on its own. A socket whose backlog stays above --max-buffered for longer than the
   * grace, or passes the hard multiple of it, is disconnected (the raw gateway's rule, RawConnection.send).
   */
  #sweepSlowConsumers(): void {
    const max = this.#d.config.maxBufferedBytes;
    for (const socket of this.io.of("/").sockets.values()) {
      const member = (socket as MemberSocket)[MEMBER];
      if (!member) continue;
      const bytes = bufferedBytes(socket);
      if (!member.isSlowConsumer(bytes, 0, max)) continue;
      this.#d.counters.slowConsumers += 1;
      this.#d.log.warn({ sid: socket.id, bufferedBytes: bytes }, "slow consumer closed (Socket.IO)");
      member.closeReason = "slow_consumer";
      socket.disconnect(true);
    }
  }

  get connectionCount(): number {
    return this.io.of("/").sockets.size;
  }

  /** A drain's close: the transport goes, so socket.io-client reconnects (to another worker) by itself. */
  drainSocket(socket: Socket): void {
    const member = (socket as MemberSocket)[MEMBER];
    if (member) member.closeReason = "draining";
    socket.conn.close();
  }

  close(): void {
    clearInterval(this.#sweep);
    if (this.#expiry) clearInterval(this.#expiry);
  }
}

/** Socket.IO's disconnect reason, for a close the server did not make itself, as connection_closed reports it. */
function peerCloseReason(reason: string): string {
  if (reason === "client namespace disconnect") return "client_closed";
  if (reason.startsWith("server")) return "server_closed";
  return "connection_lost"; // transport close / error, ping timeout, parse error
}

/** What Socket.IO holds for a socket and has not written yet: its write buffer and the WebSocket's. */
function bufferedBytes(socket: Socket): number {
  const conn = socket.conn as unknown as {
    writeBuffer: { data?: unknown }[];
    transport: { socket?: { bufferedAmount?: number } };
  };
  let bytes = conn.transport.socket?.bufferedAmount ?? 0;
  for (const p of conn.writeBuffer) bytes += typeof p.data === "string" ? p.data.length : 0;
  return bytes;
}

/** A publish's options argument: `{idempotencyKey}` when it is an object. */
function options(arg: unknown): Record<string, unknown> {
  return typeof arg === "object" && arg !== null
    ? { idempotencyKey: (arg as { idempotencyKey?: unknown }).idempotencyKey }
    : {};
}

function noAck(): void {}

function tick(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
