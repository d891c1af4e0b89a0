import type { Server as HttpServer } from "node:http";
import { createAdapter } from "@socket.io/cluster-adapter";
import { Server, type Socket } from "socket.io";
import type { ErrorCode, SwitchboardError } from "../errors.js";
import { channelProblem } from "../protocol/client-message.js";
import { grants } from "./auth.js";
import type { Member } from "./channel-registry.js";
import { createPublishPolicy, type GatewayDeps } from "./gateway-deps.js";
import type { Claims } from "./raw-connection.js";
import { TokenBucket } from "./token-bucket.js";

type Ack = (reply: { ok: true; offset?: number } | { error: { code: ErrorCode; message: string } }) => void;

/** A Socket.IO socket as a channel member; the room of the same name carries its deliveries. */
class SioMember implements Member {
  readonly protocol = "sio";
  readonly channels = new Set<string>();
  readonly socket: Socket;
  readonly claims: Claims | null;
  readonly budget: TokenBucket;
  constructor(socket: Socket, claims: Claims | null, rate: number) {
    this.socket = socket;
    this.claims = claims;
    this.budget = new TokenBucket(rate);
  }
  get closed(): boolean {
    return this.socket.disconnected;
  }
}

export type SioGatewayDeps = GatewayDeps;

/** Socket.IO on /socket.io/ (DESIGN.md §5) with @socket.io/cluster-adapter for its own cross-worker features. */
export class SioGateway {
  readonly io: Server;
  readonly #d: SioGatewayDeps;
  readonly #publishProblem: ReturnType<typeof createPublishPolicy>;
  readonly #sweep: NodeJS.Timeout;

  constructor(server: HttpServer, d: SioGatewayDeps) {
    this.#d = d;
    this.#publishProblem = createPublishPolicy(d.config);
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
    this.io.use((socket, next) => {
      const auth = socket.handshake.auth as { token?: unknown };
      const header = socket.handshake.headers.authorization;
      const token =
        (typeof auth?.token === "string" ? auth.token : undefined) ??
        (header?.startsWith("Bearer ") ? header.slice(7) : undefined) ??
        (typeof socket.handshake.query.token === "string" ? socket.handshake.query.token : undefined);
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
    this.io.on("connection", (socket) => this.#open(socket));
    this.#sweep = setInterval(() => this.#sweepSlowConsumers(), 250);
    this.#sweep.unref();
  }

  #open(socket: Socket): void {
    const member = new SioMember(
      socket,
      (socket.data.claims as Claims | null) ?? null,
      this.#d.config.clientRate,
    );
    const guard =
      (fn: (ack: Ack, ...args: unknown[]) => void) =>
      (...args: unknown[]) => {
        const last = args[args.length - 1];
        const ack: Ack = typeof last === "function" ? (last as Ack) : () => {};
        if (typeof last === "function") args.pop();
        if (!member.budget.take()) return this.#fail(ack, "rate_limited", "too many events per second");
        fn(ack, ...args);
      };
    socket.on(
      "subscribe",
      guard((ack, arg) => this.#subscribe(member, arg, ack)),
    );
    socket.on(
      "unsubscribe",
      guard((ack, channel) => {
        if (typeof channel !== "string")
          return this.#fail(ack, "invalid_channel", "channel must be a string");
        this.#d.subscriptions.unsubscribe(member, channel);
        socket.leave(channel);
        ack({ ok: true });
      }),
    );
    socket.on(
      "publish",
      guard((ack, channel, data) => this.#publish(member, channel, data, ack)),
    );
    socket.on("disconnect", () => this.#d.subscriptions.leaveAll(member));
  }

  #subscribe(member: SioMember, arg: unknown, ack: Ack): void {
    const { channel, since } =
      typeof arg === "object" && arg !== null
        ? (arg as { channel?: unknown; since?: unknown })
        : { channel: arg, since: undefined };
    const problem = channelProblem(channel, this.#d.config.maxChannelLength);
    if (problem) return this.#fail(ack, "invalid_channel", problem);
    const name = channel as string;
    if (since !== undefined && (typeof since !== "number" || !Number.isInteger(since) || since < 0)) {
      return this.#fail(ack, "bad_request", "since must be a non-negative integer offset");
    }
    if (!grants(member.claims, name))
      return this.#fail(ack, "forbidden", `the token does not grant channel ${name}`);
    this.#d.subscriptions.subscribe(member, name, (since as number | undefined) ?? null, (outcome) => {
      if (!outcome.ok) return this.#fail(ack, outcome.error.code, outcome.error.message);
      member.socket.join(name);
      const reply = outcome.reply;
      if (reply?.gap) {
        this.#fail(ack, "history_gap", `messages after offset ${since} are no longer in history`);
      } else ack({ ok: true });
      for (const [offset, dataJson] of reply?.history ?? []) {
        member.socket.emit("message", name, JSON.parse(dataJson), { offset });
      }
    });
  }

  #publish(member: SioMember, channel: unknown, data: unknown, ack: Ack): void {
    const problem = channelProblem(channel, this.#d.config.maxChannelLength);
    if (problem) return this.#fail(ack, "invalid_channel", problem);
    const name = channel as string;
    const refused = this.#publishProblem(member.claims, name);
    if (refused) return this.#fail(ack, "forbidden", refused);
    const dataJson = JSON.stringify(data ?? null);
    if (Buffer.byteLength(dataJson) > this.#d.config.maxPayloadBytes) {
      return this.#fail(ack, "too_large", `data exceeds ${this.#d.config.maxPayloadBytes} bytes`);
    }
    this.#d.bus.publish([[name, dataJson]]).then(
      ([offset]) => ack({ ok: true, offset }),
      (err: SwitchboardError) => this.#fail(ack, err.code ?? "internal", err.message),
    );
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
