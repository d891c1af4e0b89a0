import type { IncomingMessage, Server } from "node:http";
import type { Socket } from "node:net";
import { type RawData, type WebSocket, WebSocketServer } from "ws";
import type { Resume } from "../bus/bus.js";
import { CLOSE_RESTART, type ErrorCode, errorCodes, errorReply, type SwitchboardError } from "../errors.js";
import { backendFields, type HookSession } from "../hooks/backend-hooks.js";
import {
  applySession,
  claimsOf,
  closeReason,
  pickHeaders,
  queryOf,
  remoteAddrOf,
  upgradeRefusal,
} from "../hooks/connect-admission.js";
import { SessionRefresher } from "../hooks/session-refresh.js";
import { SubscribeGate } from "../hooks/subscribe-gate.js";
import { endWithJson } from "../http-reply.js";
import {
  type ClientMessage,
  isParseFailure,
  parseClientMessage,
  type RequestId,
  requestIdOf,
} from "../protocol/client-message.js";
import {
  ackText,
  disconnectText,
  encodeTextFrame,
  errorText,
  gapFields,
  lostGap,
  messageText,
  pongText,
  publishedFields,
  reconnectText,
  rpcText,
} from "../protocol/server-frames.js";
import { type Claims, tokenOf, unexpired } from "./auth.js";
import { type ClientMember, clientIdOf, nextClientSerial } from "./client-member.js";
import { type ClientPublish, createClientPublish } from "./client-publish.js";
import type { GatewayDeps } from "./gateway-deps.js";
import { RawConnection } from "./raw-connection.js";
import { EXPIRED_MESSAGE, refreshedClaims, startExpirySweep } from "./token-refresh.js";

const SLOW_CONSUMER_GRACE_MS = 30_000;
const CONNECTION = Symbol("switchboard.connection");

/** A ws socket with its connection attached: shared listeners find their connection through it. */
type ConnectedWebSocket = WebSocket & { [CONNECTION]?: RawConnection };

function destroySocket(this: Socket): void {
  this.destroy();
}

function markAlive(this: ConnectedWebSocket): void {
  const conn = this[CONNECTION];
  if (conn) conn.alive = true;
}

export type WsGatewayDeps = GatewayDeps & { accepting(): boolean };

/** The raw JSON protocol on /ws (docs/protocol.md): upgrade, auth, frames in, frames out, heartbeats, drain. */
export class WsGateway {
  readonly #d: WsGatewayDeps;
  readonly #wss: WebSocketServer;
  readonly connections = new Set<RawConnection>();
  readonly #publish: ClientPublish;
  readonly #gate: SubscribeGate;
  readonly #sessions: SessionRefresher;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #expiry: NodeJS.Timeout | null;
  // Every connection shares these listeners instead of closures of its own (about 1 KiB per idle connection).
  readonly #onSlow = (conn: RawConnection) => this.#slow(conn);
  readonly #onMessage: (this: ConnectedWebSocket, data: RawData, isBinary: boolean) => void;
  readonly #onClose: (this: ConnectedWebSocket, code: number) => void;
  readonly #onError: (this: ConnectedWebSocket, err: Error) => void;

  constructor(server: Server, d: WsGatewayDeps) {
    this.#d = d;
    this.#publish = createClientPublish(d.config, d.namespaces, d.bus, d.hooks);
    this.#gate = new SubscribeGate(d.hooks, d.namespaces, d.subscriptions);
    this.#sessions = new SessionRefresher(d.hooks, (m) => this.#expire(m as RawConnection));
    // Frames between max-payload and 4x get a too_large error and the connection stays; beyond that ws closes 1009.
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload: d.config.maxPayloadBytes * 4,
      perMessageDeflate: d.config.wsCompression,
    });
    server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
    const gateway = this;
    this.#onMessage = function (data, isBinary) {
      const conn = this[CONNECTION];
      if (conn) gateway.#receiveGuarded(conn, data, isBinary);
    };
    this.#onClose = function (code) {
      const conn = this[CONNECTION];
      if (conn) gateway.#closed(conn, code === 1006 ? "connection_lost" : "client_closed");
    };
    this.#onError = (err) => d.log.debug({ err }, "ws connection error");
    this.#heartbeat = setInterval(() => this.#beat(), d.config.pingIntervalMs);
    this.#heartbeat.unref();
    this.#expiry = startExpirySweep(d.config, (now) => {
      for (const conn of this.connections) {
        if (!unexpired(conn.claims, now)) this.#expire(conn);
        else this.#sessions.check(conn, now);
      }
    });
  }

  async #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const path = req.url?.split("?", 1)[0];
    if (path?.startsWith("/socket.io/")) return; // Engine.IO's own upgrade handler takes it
    socket.on("error", destroySocket);
    if (path !== "/ws") return rejectUpgrade(socket, "not_found", "WebSocket endpoint is /ws");
    if (!this.#d.accepting()) return rejectUpgrade(socket, "unavailable", "server is draining");
    const hooks = this.#d.hooks;
    let claims: Claims | null;
    try {
      claims = await claimsOf(this.#d.verifyToken, tokenOf(req), hooks.connectHook);
    } catch (err) {
      this.#d.counters.error("unauthorized");
      return rejectUpgrade(socket, "unauthorized", (err as Error).message);
    }
    if (!hooks.connectHook) {
      return this.#wss.handleUpgrade(req, socket, head, (ws) => this.#open(ws, socket, claims, null));
    }
    // The id is made now so the connect hook and everything after it know the client by the same one.
    const serial = nextClientSerial();
    const decision = await hooks.connect({
      client: clientIdOf(serial),
      protocol: "ws",
      transport: "websocket",
      remoteAddr: remoteAddrOf(req.headers, socket.remoteAddress),
      query: queryOf(req.url),
      headers: pickHeaders(req.headers, hooks.headerNames),
    });
    if (socket.destroyed) return; // the client gave up while the backend was asked
    if (!this.#d.accepting()) return rejectUpgrade(socket, "unavailable", "server is draining");
    switch (decision.kind) {
      case "accept":
        return this.#wss.handleUpgrade(req, socket, head, (ws) =>
          this.#open(ws, socket, claims, decision.session, serial),
        );
      case "disconnect":
        // Accepted only to say why, in a frame the client can read, and with a close code it acts on.
        return this.#wss.handleUpgrade(req, socket, head, (ws) => {
          ws.send(disconnectText(decision.code, decision.reason, false));
          ws.close(decision.code, closeReason(decision.reason));
        });
      default: {
        this.#d.counters.error(decision.kind === "refuse" ? "forbidden" : "backend_unavailable");
        const { status, body, headers } = upgradeRefusal(decision);
        return endWithJson(socket, status, body, headers);
      }
    }
  }

  #open(
    ws: ConnectedWebSocket,
    socket: Socket,
    claims: Claims | null,
    session: HookSession | null,
    serial?: number,
  ): void {
    const conn = new RawConnection(
      ws,
      socket,
      claims,
      this.#d.flusher,
      this.#onSlow,
      this.#d.config.clientRate,
      serial,
    );
    if (session) {
      applySession(conn, session);
      this.#sessions.grant(conn, session.expireAt);
    }
    ws[CONNECTION] = conn;
    this.connections.add(conn);
    this.#d.clients.opened(conn);
    ws.on("message", this.#onMessage);
    ws.on("pong", markAlive);
    ws.on("error", this.#onError);
    ws.on("close", this.#onClose);
    if (session) for (const channel of session.channels) this.#subscribeServerSide(conn, channel);
  }

  /** A channel the connect hook named: joined without the subscribe hook, and without an ack (nothing asked). */
  #subscribeServerSide(conn: RawConnection, channel: string): void {
    this.#d.subscriptions.subscribe(conn, channel, null, (outcome) => {
      if (!outcome.ok) this.#d.log.debug({ channel, err: outcome.error }, "connect hook channel not joined");
    });
  }

  #closed(conn: RawConnection, peerReason: string): void {
    if (!this.connections.delete(conn)) return;
    conn.closed = true;
    this.#d.clients.closed(conn, peerReason);
    this.#d.subscriptions.leaveAll(conn);
  }

  /** A fault of ours while handling a frame is logged and closes that connection with 1011; the others go on. */
  #receiveGuarded(conn: RawConnection, data: RawData, isBinary: boolean): void {
    try {
      this.#receive(conn, data, isBinary);
    } catch (err) {
      this.#d.log.error({ err }, "raw frame handling failed: connection closed with 1011");
      this.#d.counters.error("internal");
      conn.closed = true;
      conn.closeReason = "internal";
      conn.ws.close(errorCodes.internal.close, "internal error");
    }
  }

  #receive(conn: RawConnection, data: RawData, isBinary: boolean): void {
    if (!conn.budget.take()) {
      return this.#error(conn, "rate_limited", `more than ${this.#d.config.clientRate} frames per second`);
    }
    const bytes = data as Buffer; // binaryType stays "nodebuffer": ws joins fragments into one Buffer
    if (bytes.length > this.#d.config.maxPayloadBytes) {
      const id = isBinary ? undefined : requestIdOf(bytes.toString("utf8"));
      return this.#error(conn, "too_large", `frame exceeds ${this.#d.config.maxPayloadBytes} bytes`, id);
    }
    if (isBinary) return this.#error(conn, "bad_request", "binary frames are not supported; send JSON text");
    // A frame after the token's expiry is not served, even before the sweep closes the connection.
    if (!unexpired(conn.claims)) return this.#expire(conn);
    const msg = parseClientMessage(bytes.toString("utf8"), this.#d.config.maxChannelLength);
    if (isParseFailure(msg)) return this.#error(conn, msg.error, msg.message, msg.id);
    this.#handle(conn, msg);
  }

  #handle(conn: RawConnection, msg: ClientMessage): void {
    switch (msg.type) {
      case "ping":
        return this.#text(conn, pongText(msg.id));
      case "refresh":
        return void refreshedClaims(this.#d.verifyToken, conn.claims, msg.token).then(
          (claims) => {
            conn.claims = claims;
            this.#ack(conn, msg.id, claims.exp === undefined ? {} : { exp: claims.exp });
          },
          (err: SwitchboardError) => this.#error(conn, err.code, err.message, msg.id),
        );
      case "unsubscribe":
        this.#gate.cancel(conn, msg.channel);
        this.#d.subscriptions.unsubscribe(conn, msg.channel);
        return this.#ack(conn, msg.id);
      case "subscribe": {
        const resume = msg.since === undefined ? null : { since: msg.since, epoch: msg.epoch ?? null };
        return this.#subscribe(conn, msg.channel, resume, msg.id);
      }
      case "publish":
        return this.#publish(
          conn,
          msg,
          (r) => this.#ack(conn, msg.id, publishedFields(r)),
          (err) => this.#error(conn, err.code, err.message, msg.id, backendFields(err)),
        );
      case "rpc":
        return void this.#d.hooks.rpc(conn, msg.method, msg.data).then(
          (data) => this.#text(conn, rpcText(msg.id, data)),
          (err: SwitchboardError) => this.#error(conn, err.code, err.message, msg.id, backendFields(err)),
        );
    }
  }

  #subscribe(conn: RawConnection, channel: string, resume: Resume | null, id: RequestId | undefined): void {
    this.#gate.subscribe(conn, channel, resume, (outcome) => {
      if (!outcome.ok) {
        const { code, message } = outcome.error;
        return this.#error(conn, code, message, id, backendFields(outcome.error));
      }
      const { gap, history, offset, epoch, recovered } = outcome;
      if (gap) this.#error(conn, "history_gap", gap.message, id, gapFields(channel, offset, epoch, gap));
      else this.#ack(conn, id, { channel, offset, epoch, ...(recovered ? { recovered } : {}) });
      if (history.length === 0) return;
      const channelJson = JSON.stringify(channel);
      const frames = history.map(([o, dataJson]) => encodeTextFrame(messageText(channelJson, dataJson, o)));
      void conn.replay(channel, frames, this.#d.config.maxBufferedBytes);
    });
  }

  /** Delivers one message to every raw subscriber here: encoded once, the same bytes for every socket. */
  deliver(channel: string, offset: number, dataJson: string): number {
    const members = this.#d.registry.rawMembers(channel);
    if (!members || members.size === 0) return 0;
    return this.#toMembers(
      members,
      channel,
      encodeTextFrame(messageText(JSON.stringify(channel), dataJson, offset)),
    );
  }

  /** Tells every raw subscriber of `channel` here that messages may be missing; its position is now (epoch, offset). */
  lost(channel: string, offset: number, epoch: string): void {
    const members = this.#d.registry.rawMembers(channel);
    if (!members || members.size === 0) return;
    const gap = lostGap(offset);
    this.#d.counters.error("history_gap", members.size);
    this.#toMembers(
      members,
      channel,
      encodeTextFrame(
        errorText("history_gap", gap.message, undefined, gapFields(channel, offset, epoch, gap)),
      ),
    );
  }

  /** A join or leave notice of a joinLeave channel to its raw subscribers here, in order with its messages. */
  presence(channel: string, kind: "join" | "leave", infoJson: string): void {
    const members = this.#d.registry.rawMembers(channel);
    if (!members || members.size === 0) return;
    const text = `{"type":"${kind}","channel":${JSON.stringify(channel)},"info":${infoJson}}`;
    this.#toMembers(members, channel, encodeTextFrame(text));
  }

  #toMembers(members: ReadonlySet<ClientMember>, channel: string, frame: Buffer): number {
    const max = this.#d.config.maxBufferedBytes;
    for (const m of members) (m as RawConnection).sendLive(channel, frame, max);
    return members.size;
  }

  #text(conn: RawConnection, text: string): void {
    conn.send(encodeTextFrame(text), this.#d.config.maxBufferedBytes);
  }

  #ack(conn: RawConnection, id: RequestId | undefined, extra?: Record<string, unknown>): void {
    const text = ackText(id, extra);
    if (text) this.#text(conn, text);
  }

  #error(
    conn: RawConnection,
    code: ErrorCode,
    message: string,
    id?: RequestId,
    extra?: Record<string, unknown>,
  ): void {
    this.#d.counters.error(code);
    this.#text(conn, errorText(code, message, id, extra));
  }

  /** The token expired without a refresh: a `token_expired` error, then close 4001. */
  #expire(conn: RawConnection): void {
    if (conn.closed) return;
    this.#error(conn, "token_expired", EXPIRED_MESSAGE);
    conn.flush();
    conn.closed = true;
    conn.closeReason = "token_expired";
    conn.ws.close(errorCodes.token_expired.close, "token expired");
  }

  #slow(conn: RawConnection): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.closeReason = "slow_consumer";
    this.#d.counters.slowConsumers += 1;
    this.#d.log.warn(
      { channels: conn.channels.size, limitBytes: this.#d.config.maxBufferedBytes },
      "slow consumer closed",
    );
    // The close frame queues behind the backlog (at most --max-buffered, so memory stays bounded); a reader that
    // does not catch up within ws's own close timeout is cut off.
    conn.ws.close(errorCodes.slow_consumer.close, "slow consumer");
    setTimeout(() => conn.ws.terminate(), SLOW_CONSUMER_GRACE_MS).unref();
  }

  #beat(): void {
    for (const conn of this.connections) {
      if (!conn.alive) {
        conn.closeReason = "heartbeat_timeout";
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }

  /** Tells one client to come back later and closes it with 1012. */
  sendReconnect(conn: RawConnection, delayMs: number, reason: string): void {
    this.#text(conn, reconnectText(delayMs, reason));
    conn.flush();
    conn.closeReason = reason;
    conn.ws.close(CLOSE_RESTART, reason);
  }

  close(): void {
    clearInterval(this.#heartbeat);
    if (this.#expiry) clearInterval(this.#expiry);
    for (const conn of this.connections) conn.ws.terminate();
  }
}

function rejectUpgrade(socket: Socket, code: ErrorCode, message: string): void {
  const { status, body } = errorReply(code, message);
  endWithJson(socket, status, body);
}
