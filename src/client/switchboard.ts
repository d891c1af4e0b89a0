import { backoffFor } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { isRetryable, SwitchboardClientError, toError } from "./errors.js";
import { type ClientFrame, type ErrorFrame, parseServerFrame, type RequestId } from "./frames.js";
import { Heartbeat } from "./heartbeat.js";
import {
  type PendingPublish,
  type PublishOptions,
  PublishQueue,
  type PublishResult,
} from "./publish-queue.js";
import { randomKey } from "./random-key.js";
import { type PendingRpc, RpcCalls } from "./rpc-calls.js";
import {
  type ChannelTracker,
  ChannelTrackers,
  type Gap,
  type SubscribeOptions,
  type Subscription,
} from "./subscription.js";
import { refreshDelayMs, tokenExpiry } from "./token-refresh.js";
import { withToken } from "./url.js";
import {
  abandon,
  errorEventMessage,
  OPEN,
  type WebSocketConstructor,
  type WebSocketLike,
  webSocketConstructor,
} from "./web-socket.js";

type Timer = ReturnType<typeof setTimeout>;

/**
 * disconnected: not connected (before connect(), or waiting to reconnect); closed: for good, disconnect() was
 * called or the backend ended the connection and asked it not to reconnect (close 4010).
 */
export type ConnectionState = "disconnected" | "connecting" | "connected" | "closed";

export type SwitchboardOptions = {
  /** Connection token, sent as `?token=`. */
  token?: string;
  /** Called before every connection attempt (takes precedence over `token`), e.g. to fetch a fresh JWT. */
  getToken?: () => string | Promise<string>;
  /** WebSocket constructor; default globalThis.WebSocket. In Node 20 pass `ws`'s. */
  WebSocket?: WebSocketConstructor;
  minReconnectDelayMs?: number;
  maxReconnectDelayMs?: number;
  /** Send a ping when nothing arrived for this long. */
  heartbeatIntervalMs?: number;
  /** Give up on the link when nothing arrives this long after a ping (also the limit for opening a socket). */
  heartbeatTimeoutMs?: number;
  /** A publish not acknowledged within this long rejects with code `timeout`. */
  publishTimeoutMs?: number;
  /** An rpc call not answered within this long (waiting for a connection included) rejects with code `timeout`. */
  rpcTimeoutMs?: number;
  /** A subscribe not answered within this long means the link is broken: reconnect and resume. */
  subscribeTimeoutMs?: number;
  /** Random numbers in [0, 1) for the backoff jitter (tests make it deterministic). */
  random?: () => number;
};

export type SwitchboardEvents = {
  state: (state: ConnectionState, previous: ConnectionState) => void;
  error: (err: Error) => void;
  gap: (gap: Gap) => void;
};

/** What a reply with a given id settles; a subscribe's timer gives up on the link if no answer comes. */
type Pending =
  | { kind: "subscribe"; tracker: ChannelTracker; timer: Timer }
  | { kind: "publish"; publish: PendingPublish }
  | { kind: "refresh"; token: string }
  | { kind: "rpc"; call: PendingRpc };

/** The server closes with this when the connection's token expired without a refresh. */
const CLOSE_TOKEN_EXPIRED = 4001;
/** What the SDK reports for a socket it gave up on itself (no close frame was received). */
const CLOSE_ABNORMAL = 1006;
/** The backend ended the connection and asked it not to come back (4009 is the same, reconnect allowed). */
const CLOSE_NO_RECONNECT = 4010;

/**
 * A raw-protocol (/ws) client that keeps its subscriptions through every kind of loss: it reconnects (the
 * server's delay on a drain, a jittered backoff otherwise), resumes each channel from the last offset it
 * received, drops duplicates, reports gaps, and sends publishes until they are acknowledged.
 */
export class Switchboard {
  readonly #url: string | (() => string);
  readonly #o: Required<Omit<SwitchboardOptions, "token" | "getToken" | "WebSocket">> &
    Pick<SwitchboardOptions, "token" | "getToken">;
  readonly #WebSocket: WebSocketConstructor;
  /** The reconnect (and retry) delay for an attempt. */
  readonly #backoff: (attempt: number) => number;
  readonly #events = new Emitter<SwitchboardEvents>();
  readonly #channels: ChannelTrackers;
  readonly #publishes: PublishQueue;
  readonly #rpcs: RpcCalls;
  readonly #heartbeat: Heartbeat;
  #state: ConnectionState = "disconnected";
  #started = false;
  #ws: WebSocketLike | null = null;
  /** The socket is open and subscribes were sent on it: requests go out at once. */
  #live = false;
  #nextId = 1;
  /** Replies still due on the current socket, by request id (a new socket starts empty). */
  #replies = new Map<RequestId, Pending>();
  /** Subscribes sent when the socket opened and not yet answered; once none is left the link counts as good. */
  #awaiting = new Set<ChannelTracker>();
  /** Connection losses since the last good link: the backoff's attempt. */
  #failures = 0;
  /** delayMs of the server's `reconnect` frame on the current socket (it is draining). */
  #serverDelayMs: number | null = null;
  /** The reason of a `disconnect` frame with `reconnect: false` on the current socket: do not come back. */
  #stayAway: string | null = null;
  /** A 4001 close was already answered with an immediate reconnect since the last good link. */
  #refreshedOnExpiry = false;
  /** The token of the current connection, and the timer that refreshes it in-band before it expires. */
  #token: string | undefined;
  #refreshTimer: Timer | null = null;
  #retryTimer: Timer | null = null;
  #openTimer: Timer | null = null;

  constructor(url: string | (() => string), options: SwitchboardOptions = {}) {
    this.#url = url;
    this.#channels = new ChannelTrackers(this.#events, (t, tellServer) => this.#left(t, tellServer));
    this.#WebSocket = webSocketConstructor(options.WebSocket);
    this.#o = {
      token: options.token,
      getToken: options.getToken,
      minReconnectDelayMs: options.minReconnectDelayMs ?? 500,
      maxReconnectDelayMs: options.maxReconnectDelayMs ?? 20_000,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 25_000,
      heartbeatTimeoutMs: options.heartbeatTimeoutMs ?? 10_000,
      publishTimeoutMs: options.publishTimeoutMs ?? 30_000,
      rpcTimeoutMs: options.rpcTimeoutMs ?? 30_000,
      subscribeTimeoutMs: options.subscribeTimeoutMs ?? 15_000,
      random: options.random ?? Math.random,
    };
    this.#backoff = backoffFor(this.#o.minReconnectDelayMs, this.#o.maxReconnectDelayMs, this.#o.random);
    this.#publishes = new PublishQueue((p) => this.#sendPublish(p), this.#backoff, this.#o.publishTimeoutMs);
    this.#rpcs = new RpcCalls((call) => this.#sendRpc(call), this.#o.rpcTimeoutMs);
    this.#heartbeat = new Heartbeat(
      this.#o.heartbeatIntervalMs,
      this.#o.heartbeatTimeoutMs,
      () => this.#send({ type: "ping", id: this.#nextId++ }),
      () => this.#giveUp("no frame from the server within the heartbeat timeout"),
    );
  }

  get state(): ConnectionState {
    return this.#state;
  }

  on<K extends keyof SwitchboardEvents>(event: K, listener: SwitchboardEvents[K]): () => void {
    return this.#events.on(event, listener);
  }

  /** Starts connecting; from now on the client reconnects by itself until disconnect(). */
  connect(): void {
    if (this.#state === "closed") throw new Error("this Switchboard was disconnected; create a new one");
    if (this.#started) return;
    this.#started = true;
    void this.#attempt();
  }

  /** Final: closes the connection, stops reconnecting, rejects pending publishes and rpc calls with code `closed`. */
  disconnect(): void {
    if (this.#state === "closed") return;
    const ws = this.#ws;
    this.#lose();
    if (ws) abandon(ws, true);
    this.#end(new SwitchboardClientError("closed", "disconnect() was called"));
  }

  /** For good: no reconnect, every subscription dropped, everything pending rejected with `err`. */
  #end(err: SwitchboardClientError): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    for (const t of [...this.#channels.values()]) t.unsubscribe();
    this.#setState("closed");
    this.#publishes.rejectAll(err);
    this.#rpcs.rejectAll(err);
  }

  /**
   * Subscribes (now if connected, else on connecting) and on every reconnection resumes from the last offset
   * received. One subscription per channel: unsubscribe before subscribing again.
   */
  subscribe(channel: string, options: SubscribeOptions): Subscription {
    if (this.#state === "closed") throw new Error("this Switchboard was disconnected; create a new one");
    const tracker = this.#channels.add(channel, options);
    if (this.#live) this.#sendSubscribe(tracker);
    return tracker;
  }

  /**
   * Publishes (`--publish-namespaces` decides where clients may) and resolves once the server sequenced it.
   * Sent again after a reconnect or a retryable error, always with the same idempotency key, so the server
   * delivers it once; rejects with the server's code when refused, `timeout` after publishTimeoutMs.
   */
  publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    if (this.#state === "closed") {
      return Promise.reject(new SwitchboardClientError("closed", "disconnect() was called"));
    }
    return this.#publishes.add(channel, data, options.idempotencyKey ?? randomKey());
  }

  /**
   * Calls `method` on the backend (--rpc-hook) and resolves with its answer's data; rejects with the server's code
   * (`forbidden` with the backend's `backendCode` when it refused), `connection_lost` when the connection dropped
   * before the answer (never sent twice), `timeout` after rpcTimeoutMs. Made while disconnected, it waits.
   */
  rpc(method: string, data: unknown = null): Promise<unknown> {
    if (this.#state === "closed") {
      return Promise.reject(new SwitchboardClientError("closed", "disconnect() was called"));
    }
    return this.#rpcs.add(method, data);
  }

  async #attempt(): Promise<void> {
    this.#retryTimer = null;
    this.#setState("connecting");
    let ws: WebSocketLike;
    try {
      const base = typeof this.#url === "function" ? this.#url() : this.#url;
      const token = this.#o.getToken ? await this.#o.getToken() : this.#o.token;
      // disconnect() from a state listener or while the token was fetched
      if (this.#state === "closed") return;
      this.#token = token;
      ws = new this.#WebSocket(withToken(base, token));
    } catch (err) {
      if (this.#state === "closed") return;
      this.#events.emit("error", toError(err));
      this.#setState("disconnected");
      this.#retryIn(this.#backoff(this.#failures++));
      return;
    }
    this.#ws = ws;
    this.#serverDelayMs = null;
    this.#stayAway = null;
    ws.onopen = () => this.#opened(ws);
    ws.onmessage = (event) => this.#received(ws, event.data);
    ws.onclose = (event) => this.#closed(ws, event.code);
    ws.onerror = (event) =>
      this.#events.emit("error", new SwitchboardClientError("socket_error", errorEventMessage(event)));
    this.#openTimer = setTimeout(
      () => this.#giveUp("the WebSocket did not open in time"),
      this.#o.heartbeatTimeoutMs,
    );
  }

  #opened(ws: WebSocketLike): void {
    if (ws !== this.#ws) return;
    if (this.#openTimer) clearTimeout(this.#openTimer);
    this.#openTimer = null;
    this.#live = true;
    this.#heartbeat.start();
    // Subscribes go first, then what waits to be published; the state event comes after, so a listener that
    // subscribes from it is not sent twice.
    for (const tracker of this.#channels.values()) {
      this.#awaiting.add(tracker);
      this.#sendSubscribe(tracker);
    }
    this.#publishes.flush();
    this.#rpcs.flush();
    this.#setState("connected");
    this.#checkGood();
    this.#scheduleRefresh(this.#token);
  }

  /** With getToken, sends a new token before this one expires (the server would close the connection with 4001). */
  #scheduleRefresh(token: string | undefined): void {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    const getToken = this.#o.getToken;
    const exp = tokenExpiry(token);
    if (!getToken || exp === null) return;
    this.#refreshTimer = setTimeout(
      async () => {
        this.#refreshTimer = null;
        try {
          const next = await getToken();
          if (!this.#live) return;
          const id = this.#nextId++;
          this.#replies.set(id, { kind: "refresh", token: next });
          this.#send({ type: "refresh", token: next, id });
        } catch (err) {
          // The connection will expire and reconnect with getToken: nothing is lost.
          this.#events.emit("error", toError(err));
        }
      },
      refreshDelayMs(exp, Date.now()),
    );
  }

  #received(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.#ws) return;
    this.#heartbeat.heard();
    const frame = parseServerFrame(data);
    if (!frame) return;
    switch (frame.type) {
      case "message":
        this.#channels.get(frame.channel)?.message(frame.data, frame.offset);
        return;
      case "ack": {
        const pending = this.#takeReply(frame.id);
        if (pending?.kind === "subscribe") {
          pending.tracker.subscribed(frame);
          this.#answered(pending.tracker);
        } else if (pending?.kind === "publish") {
          this.#publishes.acked(pending.publish, frame);
        } else if (pending?.kind === "refresh") {
          this.#token = pending.token;
          this.#scheduleRefresh(pending.token);
        }
        return;
      }
      case "rpc": {
        const pending = this.#takeReply(frame.id);
        if (pending?.kind === "rpc") this.#rpcs.answered(pending.call, frame.data);
        return;
      }
      case "disconnect":
        // The backend ends this connection; its close follows. With reconnect: false, for good.
        if (frame.reconnect === false) this.#stayAway = frame.reason || "disconnected by the server";
        return;
      case "error":
        return this.#serverError(frame);
      case "reconnect":
        // The server drains this worker; close 1012 follows. Come back after exactly the delay it chose.
        this.#serverDelayMs = Math.max(0, Number(frame.delayMs) || 0);
        return;
      case "join":
      case "leave":
        this.#channels.get(frame.channel)?.presence(frame.type, frame.info);
        return;
      case "unsubscribed":
        this.#channels.get(frame.channel)?.ended(frame.reason);
        return;
      case "pong":
        return;
    }
  }

  #serverError(frame: ErrorFrame): void {
    const pending = this.#takeReply(frame.id);
    if (pending?.kind === "publish") {
      this.#publishes.failed(pending.publish, frame.code, frame.message);
      return;
    }
    if (pending?.kind === "rpc") {
      const err = new SwitchboardClientError(frame.code, frame.message, frame.backendCode);
      this.#rpcs.failed(pending.call, err);
      return;
    }
    if (pending?.kind === "subscribe") {
      const tracker = pending.tracker;
      if (frame.code === "history_gap") {
        this.#gap(tracker, frame, true);
        this.#answered(tracker);
      } else if (isRetryable(frame.code)) {
        this.#retrySubscribe(tracker);
      } else {
        const err = new SwitchboardClientError(frame.code, `subscribe ${tracker.channel}: ${frame.message}`);
        tracker.failed(err);
        this.#events.emit("error", err);
      }
      return;
    }
    if (frame.id === undefined && frame.code === "history_gap" && frame.channel !== undefined) {
      const tracker = this.#channels.get(frame.channel);
      if (tracker) this.#gap(tracker, frame, false);
      return;
    }
    this.#events.emit("error", new SwitchboardClientError(frame.code, frame.message));
  }

  #gap(tracker: ChannelTracker, frame: ErrorFrame, solicited: boolean): void {
    const gap = tracker.gap(frame, solicited);
    if (gap) this.#events.emit("gap", gap);
  }

  #closed(ws: WebSocketLike, code: number): void {
    if (ws !== this.#ws) return;
    this.#lose();
    abandon(ws, false);
    if (this.#state === "closed") return;
    if (this.#stayAway !== null || code === CLOSE_NO_RECONNECT) {
      const err = new SwitchboardClientError(
        "disconnected",
        this.#stayAway ?? "the server asked not to reconnect",
      );
      this.#events.emit("error", err);
      return this.#end(err);
    }
    let delayMs: number;
    if (this.#serverDelayMs !== null) {
      delayMs = this.#serverDelayMs;
    } else if (code === CLOSE_TOKEN_EXPIRED && !this.#refreshedOnExpiry) {
      // The token expired: getToken() runs before the next attempt, so come back at once (once; a token that
      // keeps failing backs off like any other loss).
      this.#refreshedOnExpiry = true;
      delayMs = 0;
    } else {
      delayMs = this.#backoff(this.#failures++);
    }
    this.#setState("disconnected");
    this.#retryIn(delayMs);
  }

  /** The link is dead (or never opened): drop it without waiting for a closing handshake, then reconnect. */
  #giveUp(why: string): void {
    const ws = this.#ws;
    if (!ws) return;
    this.#events.emit("error", new SwitchboardClientError("timeout", why));
    this.#closed(ws, CLOSE_ABNORMAL);
  }

  /** Forgets everything tied to the current socket; what was in flight goes again on the next one. */
  #lose(): void {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = null;
    this.#ws = null;
    this.#live = false;
    this.#heartbeat.stop();
    if (this.#openTimer) clearTimeout(this.#openTimer);
    this.#openTimer = null;
    for (const p of this.#replies.values()) if (p.kind === "subscribe") clearTimeout(p.timer);
    this.#replies = new Map();
    this.#awaiting = new Set();
    for (const t of this.#channels.values()) t.cancelRetry();
    this.#publishes.connectionLost();
    this.#rpcs.connectionLost();
  }

  #retryIn(delayMs: number): void {
    if (this.#state === "closed") return; // a listener of the last state change called disconnect()
    this.#retryTimer = setTimeout(() => void this.#attempt(), delayMs);
  }

  #sendSubscribe(tracker: ChannelTracker): void {
    const id = this.#nextId++;
    // The server answers every subscribe; silence on a link that still answers pings means a frame was lost.
    const ms = this.#o.subscribeTimeoutMs;
    const timer = setTimeout(
      () => this.#giveUp(`no answer to subscribe ${tracker.channel} within ${ms} ms`),
      ms,
    );
    this.#replies.set(id, { kind: "subscribe", tracker, timer });
    this.#send({ type: "subscribe", channel: tracker.channel, id, ...tracker.resume() });
  }

  /** unavailable / rate_limited / internal: the same subscribe again after a backoff, on this socket. */
  #retrySubscribe(tracker: ChannelTracker): void {
    tracker.retryLater(this.#backoff, () => {
      if (this.#live) this.#sendSubscribe(tracker);
    });
  }

  #sendPublish(p: PendingPublish): boolean {
    if (!this.#live) return false;
    const id = this.#nextId++;
    this.#replies.set(id, { kind: "publish", publish: p });
    this.#send({ type: "publish", channel: p.channel, data: p.data, id, idempotencyKey: p.idempotencyKey });
    return true;
  }

  #sendRpc(call: PendingRpc): boolean {
    if (!this.#live) return false;
    const id = this.#nextId++;
    this.#replies.set(id, { kind: "rpc", call });
    this.#send({ type: "rpc", method: call.method, data: call.data, id });
    return true;
  }

  #left(tracker: ChannelTracker, tellServer: boolean): void {
    if (tellServer && this.#live)
      this.#send({ type: "unsubscribe", channel: tracker.channel, id: this.#nextId++ });
    this.#answered(tracker);
  }

  /** A subscribe sent at open got its final answer; when all have, the backoff starts over. */
  #answered(tracker: ChannelTracker): void {
    if (this.#awaiting.delete(tracker)) this.#checkGood();
  }

  #checkGood(): void {
    if (!this.#live || this.#awaiting.size > 0) return;
    this.#failures = 0;
    this.#refreshedOnExpiry = false;
  }

  #takeReply(id: RequestId | undefined): Pending | undefined {
    if (id === undefined) return undefined;
    const pending = this.#replies.get(id);
    this.#replies.delete(id);
    if (pending?.kind === "subscribe") clearTimeout(pending.timer);
    return pending;
  }

  #send(frame: ClientFrame): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN) return;
    try {
      ws.send(JSON.stringify(frame));
    } catch (err) {
      // A socket that closes under us: its close event follows and everything goes again on the next one.
      this.#events.emit("error", toError(err));
    }
  }

  #setState(next: ConnectionState): void {
    const previous = this.#state;
    if (previous === next) return;
    this.#state = next;
    this.#events.emit("state", next, previous);
  }
}
