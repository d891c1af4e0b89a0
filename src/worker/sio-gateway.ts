import type { Server as HttpServer, IncomingMessage } from "node:http";
import { createAdapter } from "@socket.io/cluster-adapter";
import { Server, type Socket } from "socket.io";
import type { ErrorCode } from "../errors.js";
import { channelProblem, sinceProblem } from "../protocol/client-message.js";
import { type Claims, tokenOf } from "./auth.js";
import { ClientMember } from "./client-member.js";
import { type ClientPublish, createClientPublish, type GatewayDeps } from "./gateway-deps.js";

/** Engine.IO's socket as we trim it: the request dropped once its token is read. */
type EngineSocket = { request: (IncomingMessage & { _query?: object }) | null; requestToken?: string };

type Ack = (reply: { ok: true; offset?: number } | { error: { code: ErrorCode; message: string } }) => void;

const MEMBER = Symbol("switchboard.member");

/** A Socket.IO socket with its member attached: shared listeners find their connection through it. */
type MemberSocket = Socket & { [MEMBER]?: SioMember };

/** A Socket.IO socket as a channel member; the room of the same name carries its deliveries. */
class SioMember extends ClientMember {
  readonly socket: Socket;
  constructor(socket: Socket, claims: Claims | null, rate: number) {
    super(claims, rate);
    this.socket = socket;
  }
  get protocol(): "sio" {
    return "sio";
  }
  get closed(): boolean {
    return this.socket.disconnected;
  }
}

/** Socket.IO on /socket.io/ (DESIGN.md §5) with @socket.io/cluster-adapter for its own cross-worker features. */
export class SioGateway {
  readonly io: Server;
  readonly #d: GatewayDeps;
  readonly #publish: ClientPublish;
  readonly #sweep: NodeJS.Timeout;
  readonly #onEvent: (this: MemberSocket, event: string, ...args: unknown[]) => void;
  readonly #onDisconnect: (this: MemberSocket) => void;

  constructor(server: HttpServer, d: GatewayDeps) {
    this.#d = d;
    this.#publish = createClientPublish(d.config, d.bus);
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
      raw.request = null;
      req.rawHeaders = [];
      req.headers = {};
      req._query = {};
    });
    this.io.use((socket, next) => {
      const auth = socket.handshake.auth as { token?: unknown };
      const token =
        (typeof auth?.token === "string" ? auth.token : undefined) ??
        (socket.conn as EngineSocket).requestToken;
      d.verifyToken(token).then(
        (claims) => {
          socket.data.claims = claims;
          next();
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
      if (member) gateway.#dispatch(member, event, args);
    };
    this.#onDisconnect = function () {
      const member = this[MEMBER];
      if (member) gateway.#d.subscriptions.leaveAll(member);
    };
    this.io.on("connection", (socket) => this.#open(socket));
    this.#sweep = setInterval(() => this.#sweepSlowConsumers(), 250);
    this.#sweep.unref();
  }

  /**
   * Every socket shares the same two listeners (one for all client events, one for disconnect) instead of
   * closures of its own: per-socket closures cost about 2 KiB per idle connection.
   */
  #open(socket: MemberSocket): void {
    socket[MEMBER] = new SioMember(
      socket,
      (socket.data.claims as Claims | null) ?? null,
      this.#d.config.clientRate,
    );
    socket.onAny(this.#onEvent);
    socket.on("disconnect", this.#onDisconnect);
  }

  #dispatch(member: SioMember, event: string, args: unknown[]): void {
    const last = args[args.length - 1];
    const ack: Ack = typeof last === "function" ? (args.pop() as Ack) : () => {};
    if (!member.budget.take()) return this.#fail(ack, "rate_limited", "too many events per second");
    switch (event) {
      case "subscribe":
        return this.#subscribe(member, args[0], ack);
      case "unsubscribe": {
        const channel = args[0];
        const problem = channelProblem(channel, this.#d.config.maxChannelLength);
        if (problem) return this.#fail(ack, "invalid_channel", problem);
        this.#d.subscriptions.unsubscribe(member, channel as string);
        member.socket.leave(channel as string);
        return ack({ ok: true });
      }
      case "publish":
        return this.#publish(
          member.claims,
          args[0],
          args[1] ?? null,
          (offset) => ack({ ok: true, offset }),
          (err) => this.#fail(ack, err.code, err.message),
        );
      default:
        return this.#fail(
          ack,
          "bad_request",
          `unknown event ${JSON.stringify(event)}; use subscribe, unsubscribe or publish`,
        );
    }
  }

  #subscribe(member: SioMember, arg: unknown, ack: Ack): void {
    const { channel, since } =
      typeof arg === "object" && arg !== null
        ? (arg as { channel?: unknown; since?: unknown })
        : { channel: arg, since: undefined };
    const problem = channelProblem(channel, this.#d.config.maxChannelLength);
    if (problem) return this.#fail(ack, "invalid_channel", problem);
    const sinceWhy = sinceProblem(since);
    if (sinceWhy) return this.#fail(ack, "bad_request", sinceWhy);
    const name = channel as string;
    this.#d.subscriptions.subscribe(member, name, (since as number | undefined) ?? null, (outcome) => {
      if (!outcome.ok) return this.#fail(ack, outcome.error.code, outcome.error.message);
      // Not a member when it unsubscribed or left while the subscribe was pending: no room then.
      if (member.channels.has(name)) member.socket.join(name);
      if (outcome.gap) this.#fail(ack, "history_gap", outcome.gap.message);
      else ack({ ok: true });
      for (const [offset, dataJson] of outcome.history) {
        member.socket.emit("message", name, JSON.parse(dataJson), { offset });
      }
    });
  }

  /** Delivers one message to this worker's Socket.IO subscribers; Socket.IO encodes it once for the room. */
  deliver(channel: string, offset: number, dataJson: string): number {
    if (!this.#d.registry.hasSio(channel)) return 0;
    this.io.local.to(channel).emit("message", channel, JSON.parse(dataJson), { offset });
    return this.io.of("/").adapter.rooms.get(channel)?.size ?? 0;
  }

  #fail(ack: Ack, code: ErrorCode, message: string): void {
    this.#d.counters.error(code);
    ack({ error: { code, message } });
  }

  /** Socket.IO buffers per socket on its own; a socket whose backlog passes --max-buffered is disconnected. */
  #sweepSlowConsumers(): void {
    const max = this.#d.config.maxBufferedBytes;
    for (const socket of this.io.of("/").sockets.values()) {
      const conn = socket.conn as unknown as {
        writeBuffer: { data?: unknown }[];
        transport: { socket?: { bufferedAmount?: number } };
      };
      let bytes = conn.transport.socket?.bufferedAmount ?? 0;
      for (const p of conn.writeBuffer) bytes += typeof p.data === "string" ? p.data.length : 0;
      if (bytes > max) {
        this.#d.counters.slowConsumers += 1;
        this.#d.log.warn({ sid: socket.id, bufferedBytes: bytes }, "slow consumer closed (Socket.IO)");
        socket.disconnect(true);
      }
    }
  }

  get connectionCount(): number {
    return this.io.of("/").sockets.size;
  }

  close(): void {
    clearInterval(this.#sweep);
  }
}
